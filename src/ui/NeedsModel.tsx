/** The Model panel's Load button: where a person starts (the default preset loads with one press). */
export const modelLoadButtonId = 'model-load-button';

/** Brings the Model panel into view and puts the focus on its Load button. */
export function focusModelPanel(): void {
  const button = document.getElementById(modelLoadButtonId);
  button?.scrollIntoView?.({ block: 'center' });
  button?.focus();
}

/** What a panel that needs a model shows before one is loaded, instead of its form: what it will do, and where to start. */
export function NeedsModel({ children }: { children: string }) {
  return (
    <p className="muted needs-model" data-testid="needs-model">
      {children}{' '}
      <button type="button" className="secondary small-button" onClick={focusModelPanel}>
        Go to the Model panel
      </button>
    </p>
  );
}
