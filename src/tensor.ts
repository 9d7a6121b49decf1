/**
 * `lockstep/tensor`: the tensor codec for the inference actor (schemas/tensor.fbs). An
 * actor builds a request with `tensor` and `encodeInferRequest`, publishes it to
 * `infer/<model>`, and reads the answer in its inbox with `decodeInferResponse` and
 * `tensorValues`. Garbage in is a TensorFormatError, never garbage out.
 */
export {
  decodeInferRequest,
  decodeInferResponse,
  encodeInferRequest,
  encodeInferResponse,
  outputNamed,
  tensor,
  tensorValues,
  TensorFormatError,
  type DTypeName,
  type InferErrorCode,
  type InferRequestValue,
  type InferResponseValue,
  type TensorValue,
} from './inference/tensor.ts';
export { inferTopic, inferTopicOf } from '../actors/inference.ts';
