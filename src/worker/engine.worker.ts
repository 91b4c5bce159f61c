/// <reference lib="webworker" />
/**
 * The single engine worker: the browser's EnginePlatform (navigator.gpu, Cache Storage, image decoding and probe
 * drawing on OffscreenCanvas) under the EngineApi of engine-api.ts, exposed to the UI through comlink (see api.ts
 * for the contract). The chat itself is a ChatSession (src/session/).
 */
import '../model-io/onnx-wasm-assets';
import { expose } from 'comlink';
import { GpuContext } from '../engine/gpu';
import { browserShaderSource } from '../engine/shaders-browser';
import { CacheStorageModelCache } from '../model-io/cache';
import { watchPolicyViolations } from '../model-io/unreachable';
import { probeRenderer } from '../sparsemm/probe-set';
import { createEngineApi } from './engine-api';
import { decodeImage } from './image-input';

// A download the page's CSP refuses fails like one offline; the violation event tells them apart.
watchPolicyViolations(self);

expose(
  createEngineApi({
    createGpu: () => GpuContext.create(navigator.gpu, browserShaderSource),
    modelCache: new CacheStorageModelCache(),
    decodeImage,
    probeRenderer: () =>
      probeRenderer((width, height) => {
        const context = new OffscreenCanvas(width, height).getContext('2d');
        if (!context) throw new Error('This browser cannot draw the probe images (no OffscreenCanvas 2D context in workers).');
        return context;
      }),
  }),
);
