import { useEffect, useRef } from 'react';
import type { ShownImage } from './hooks/useConversationImages';
import { formatCount } from './format';
import './images.css';

interface PendingImagesProps {
  /** The pictures that go with the next question, in order. */
  images: ShownImage[];
  onRemove: (id: number) => void;
  /** Takes every waiting picture off the next question. */
  onRemoveAll: () => void;
  disabled: boolean;
}

/**
 * Size, scaling and token cost of one picture, as text. "scaled to" names the size the processor works at, the same
 * way whether the decoder scaled a huge picture down or the longest-edge setting resized it (down or up).
 */
export function pictureFacts({ info }: Pick<ShownImage, 'info'>): string {
  const size = `${info.originalWidth} x ${info.originalHeight} px`;
  const width = info.resizedWidth ?? info.width;
  const height = info.resizedHeight ?? info.height;
  const scaled = width !== info.originalWidth || height !== info.originalHeight ? `, scaled to ${width} x ${height}` : '';
  const tokens = info.tiles !== null && info.imageTokens !== null ? ` · ${info.tiles} ${info.tiles === 1 ? 'tile' : 'tiles'}, ${formatCount(info.imageTokens)} tokens` : '';
  return `${size}${scaled}${tokens}`;
}

/** Thumbnails of the pictures waiting for the next question, each with a Remove button. File names as text only. */
export function PendingImages({ images, onRemove, onRemoveAll, disabled }: PendingImagesProps) {
  const list = useRef<HTMLUListElement>(null);
  /** Where a removal by keyboard or click was, so the focus goes to the next Remove button instead of the page. */
  const removedAt = useRef<number | null>(null);
  useEffect(() => {
    const index = removedAt.current;
    if (index === null) return;
    removedAt.current = null;
    const buttons = list.current?.querySelectorAll<HTMLButtonElement>('button.remove-picture');
    if (buttons && buttons.length > 0) buttons[Math.min(index, buttons.length - 1)].focus();
  }, [images]);

  if (images.length === 0) return null;
  return (
    <>
      <ul ref={list} className="pending-images" aria-label="Pictures for the next question" data-testid="pending-images">
        {images.map((image, index) => (
          <li key={image.info.id} className="pending-image" data-testid="pending-image" data-image-name={image.info.name}>
            <img className="picture-thumb" src={image.url} alt={`Picture for the next question: ${image.info.name}`} />
            <div className="pending-meta">
              <span className="file-name" data-testid="pending-image-name">
                {image.info.name}
              </span>
              <span className="muted small" data-testid="pending-image-facts">
                {pictureFacts(image)}
              </span>
            </div>
            <button
              type="button"
              className="secondary small-button remove-picture"
              aria-label={`Remove ${image.info.name}`}
              disabled={disabled}
              onClick={() => {
                removedAt.current = index;
                onRemove(image.info.id);
              }}
            >
              Remove
            </button>
          </li>
        ))}
      </ul>
      {images.length > 1 && (
        <button
          type="button"
          className="secondary small-button"
          data-testid="remove-all-pictures"
          disabled={disabled}
          onClick={(event) => {
            // The list goes with its buttons: the focus moves on to the question box, not to the page.
            event.currentTarget.form?.querySelector('textarea')?.focus();
            onRemoveAll();
          }}
        >
          Remove all {images.length} pictures
        </button>
      )}
    </>
  );
}
