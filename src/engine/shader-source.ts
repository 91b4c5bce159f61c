/** Returns the WGSL text of `shaders/<name>.wgsl`. The browser and Node supply different loaders. */
export type ShaderSource = (name: string) => string;
