/**
 * The one way to turn a thrown value into a message for people: the error's message, followed by its `cause`'s
 * message when that is an Error too (undici wraps the socket error, e.g. "other side closed", in `cause`; it says more
 * than "terminated"). A leaf module with no imports, so every layer may use it.
 */
export function errorMessage(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
}
