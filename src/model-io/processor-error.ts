/** A model's tokenizer or image-processor files, or a prompt given to them, that cannot be used; the message says why. */
export class ProcessorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProcessorError';
  }
}
