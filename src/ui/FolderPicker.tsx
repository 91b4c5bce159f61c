import { useState } from 'react';
import { canPickDirectory, folderFromDrop, pickDirectory, type PickedFolder } from './folder-input';
import { errorMessage } from '../errors';

/** A local model folder: a directory input, the File System Access picker where there is one, or a dropped folder. */
export function FolderPicker({ id, folder, onPick }: { id: string; folder: PickedFolder | null; onPick: (folder: PickedFolder | null) => void }) {
  const [dragging, setDragging] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  // React's types lack webkitdirectory; set it on the element directly.
  const setDirectoryAttribute = (input: HTMLInputElement | null) => {
    input?.setAttribute('webkitdirectory', '');
  };
  const accept = (picked: PickedFolder | string | null) => {
    if (typeof picked === 'string') {
      setProblem(picked);
      return;
    }
    setProblem(null);
    if (picked) onPick(picked);
  };
  const fail = (error: unknown) => setProblem(`The folder could not be read: ${errorMessage(error)}`);
  return (
    <div className="field">
      <label htmlFor={id}>Model folder (config.json, model.safetensors, tokenizer files)</label>
      <input
        id={id}
        ref={setDirectoryAttribute}
        type="file"
        multiple
        onChange={(e) => onPick(e.target.files ? folderFromFiles(e.target.files) : null)}
      />
      {canPickDirectory() && (
        <button type="button" className="secondary" onClick={() => pickDirectory().then(accept, fail)}>
          Choose a folder…
        </button>
      )}
      <div
        className={dragging ? 'folder-drop dragging' : 'folder-drop'}
        aria-label="Drop a model folder here"
        data-testid="folder-drop"
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          folderFromDrop(e.dataTransfer.items).then(accept, fail);
        }}
      >
        …or drop the model folder here
      </div>
      {problem && (
        <p role="alert" className="status error">
          {problem}
        </p>
      )}
      {folder && (
        <p className="muted">
          {folder.files.size} files from “{folder.name}”
        </p>
      )}
    </div>
  );
}

/** Keys files by their path inside the picked folder ("SmolVLM/config.json" -> "config.json"). */
function folderFromFiles(list: FileList): PickedFolder | null {
  if (list.length === 0) return null;
  const files = new Map<string, Blob>();
  let name = '';
  for (const file of Array.from(list)) {
    const relative = file.webkitRelativePath || file.name;
    const slash = relative.indexOf('/');
    if (slash > 0 && !name) name = relative.slice(0, slash);
    files.set(slash > 0 ? relative.slice(slash + 1) : relative, file);
  }
  return { name: name || 'selected files', files };
}
