/** A model could not be made to answer (server did not start, adapter not loaded, …). */
export class ServeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ServeError';
  }
}
