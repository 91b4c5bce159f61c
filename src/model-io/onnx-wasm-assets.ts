/**
 * Browser-only (Vite): serves onnxruntime-web's wasm from our own origin instead of its default CDN, so the image
 * processor (whose resize/crop ops run on ONNX Runtime) works offline. Import this once in the worker before
 * createProcessor(); Node must not import it (the `?url` imports are a Vite feature).
 */
import ortWasmFactoryUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.mjs?url';
import ortWasmBinaryUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url';
import { configureOnnxWasm } from './processor';

// transformers.js imports 'onnxruntime-web/webgpu', whose loader expects the asyncify build.
configureOnnxWasm({ mjs: ortWasmFactoryUrl, wasm: ortWasmBinaryUrl });
