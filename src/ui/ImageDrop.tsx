import { useEffect, useId, useRef, useState, type DragEvent, type KeyboardEvent } from 'react';
import './images.css';

interface ImageDropProps {
  /** Called with every file the person dropped, picked or pasted at once; the parent sends them to the worker. */
  onFiles: (files: File[]) => void;
  /** Adds the committed sample pictures. */
  onAddSamples: () => void;
  /** Adds the committed sample video; absent when the loaded model has no video path. */
  onAddSampleVideo?: () => void;
  busy: boolean;
  disabled: boolean;
}

function filesOf(list: FileList | null | undefined): File[] {
  return list ? [...list] : [];
}

/**
 * Drop zone + file picker (several files at once, pictures and videos) + paste (anywhere on the page, unless the focus
 * is in a text field that takes the paste itself) + "Add sample images" / "Add sample video". The pictures and videos
 * themselves show above the question box.
 */
export function ImageDrop({ onFiles, onAddSamples, onAddSampleVideo, busy, disabled }: ImageDropProps) {
  const inputId = useId();
  const input = useRef<HTMLInputElement>(null);
  const [dragging, setDragging] = useState(false);
  const enabled = !disabled && !busy;

  useEffect(() => {
    if (!enabled) return;
    const onPaste = (event: ClipboardEvent) => {
      const files = filesOf(event.clipboardData?.files);
      if (files.length === 0) return; // plain text pastes go to the focused field as usual
      event.preventDefault();
      onFiles(files);
    };
    document.addEventListener('paste', onPaste);
    return () => document.removeEventListener('paste', onPaste);
  }, [enabled, onFiles]);

  const onDrop = (event: DragEvent<HTMLDivElement>) => {
    event.preventDefault();
    setDragging(false);
    if (!enabled) return;
    const files = filesOf(event.dataTransfer.files);
    if (files.length > 0) onFiles(files);
  };

  const onKeyDown = (event: KeyboardEvent<HTMLDivElement>) => {
    if (event.target !== event.currentTarget) return;
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      input.current?.click();
    }
  };

  return (
    <div className="image-drop-row">
      <div
        className={`image-drop wide-drop${dragging ? ' dragging' : ''}${enabled ? '' : ' disabled'}`}
        data-testid="image-drop"
        role="button"
        tabIndex={enabled ? 0 : -1}
        aria-disabled={!enabled}
        aria-label="Pictures and videos: drop them here, paste them, or press Enter to choose files (several at once)"
        onKeyDown={onKeyDown}
        onClick={(event) => {
          if (enabled && event.target === event.currentTarget) input.current?.click();
        }}
        onDragOver={(event) => {
          event.preventDefault();
          event.dataTransfer.dropEffect = enabled ? 'copy' : 'none';
          if (enabled) setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
      >
        <span className="drop-hint" aria-hidden="true">
          {busy ? 'Reading the files…' : 'Drop images or videos here, paste them, or click to choose (several at once)'}
        </span>
      </div>
      <div className="image-actions">
        <label htmlFor={inputId} className="file-button">
          Choose images or videos…
        </label>
        <input
          ref={input}
          id={inputId}
          className="visually-hidden-input"
          type="file"
          accept="image/*,video/*"
          multiple
          disabled={!enabled}
          data-testid="image-input"
          onChange={(event) => {
            const files = filesOf(event.target.files);
            if (files.length > 0) onFiles(files);
            event.target.value = ''; // picking the same files again fires another change
          }}
        />
        <button type="button" className="secondary" data-testid="add-samples" disabled={!enabled} onClick={onAddSamples}>
          Add sample images
        </button>
        {onAddSampleVideo && (
          <button type="button" className="secondary" data-testid="add-sample-video" disabled={!enabled} onClick={onAddSampleVideo}>
            Add sample video
          </button>
        )}
        {busy && (
          <p className="muted small" aria-live="polite">
            Reading the files…
          </p>
        )}
      </div>
    </div>
  );
}
