interface PlaceholderPanelProps {
  id: string;
  title: string;
}

/** Marks where a later feature goes, so the layout is already in place. */
export function PlaceholderPanel({ id, title }: PlaceholderPanelProps) {
  const headingId = `${id}-heading`;
  return (
    <section className="panel placeholder" aria-labelledby={headingId} data-testid={`${id}-panel`}>
      <h2 id={headingId}>{title}</h2>
      <p className="muted">Not yet available.</p>
    </section>
  );
}
