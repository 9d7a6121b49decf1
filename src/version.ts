/** This package's version, written into every log header (kept equal to package.json by a test). */
export const lockstepVersion = '0.1.0';
