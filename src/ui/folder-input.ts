/**
 * Reading a model folder the user gives the page: a dragged folder (DataTransferItem.webkitGetAsEntry) or one picked
 * with the File System Access API (showDirectoryPicker, Chrome/Edge). Only the folder's top-level files matter: a
 * model folder holds config.json, model.safetensors and the tokenizer/processor JSON files side by side.
 * (`<input webkitdirectory>` is the third way; ModelPanel handles it.)
 */

export interface PickedFolder {
  name: string;
  /** Keyed by file name inside the folder. */
  files: Map<string, Blob>;
}

/** The parts of the (non-standard but universal) FileSystemEntry API we use; structural so tests can fake them. */
export interface FolderEntry {
  isFile: boolean;
  isDirectory: boolean;
  name: string;
}
export interface FileEntryLike extends FolderEntry {
  file(success: (file: File) => void, failure?: (error: unknown) => void): void;
}
export interface DirectoryEntryLike extends FolderEntry {
  createReader(): { readEntries(success: (entries: FolderEntry[]) => void, failure?: (error: unknown) => void): void };
}

/** The top-level files of a dropped directory. readEntries returns batches (100 in Chrome) until an empty one. */
export async function readDroppedDirectory(directory: DirectoryEntryLike): Promise<PickedFolder> {
  const reader = directory.createReader();
  const entries: FolderEntry[] = [];
  for (;;) {
    const batch = await new Promise<FolderEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) break;
    entries.push(...batch);
  }
  const files = new Map<string, Blob>();
  for (const entry of entries) {
    if (!entry.isFile) continue;
    const file = await new Promise<File>((resolve, reject) => (entry as FileEntryLike).file(resolve, reject));
    files.set(entry.name, file);
  }
  return { name: directory.name, files };
}

/** What a drop carried: one folder (read), or an explanation of why it is not usable. */
export async function folderFromDrop(items: DataTransferItemList): Promise<PickedFolder | string> {
  const entries = Array.from(items)
    .filter((item) => item.kind === 'file')
    .map((item) => item.webkitGetAsEntry() as FolderEntry | null)
    .filter((entry): entry is FolderEntry => entry !== null);
  const directories = entries.filter((entry) => entry.isDirectory);
  if (directories.length === 0) return 'Drop the model folder itself (not the files in it).';
  if (directories.length > 1) return 'Drop one model folder at a time.';
  return readDroppedDirectory(directories[0] as DirectoryEntryLike);
}

interface DirectoryHandleLike {
  name: string;
  values(): AsyncIterable<{ kind: 'file' | 'directory'; name: string; getFile?: () => Promise<File> }>;
}

/** Whether this browser has the File System Access directory picker. */
export function canPickDirectory(): boolean {
  return typeof (window as unknown as { showDirectoryPicker?: unknown }).showDirectoryPicker === 'function';
}

/** Opens the browser's folder picker (File System Access API); null if the user cancels. */
export async function pickDirectory(): Promise<PickedFolder | null> {
  const picker = (window as unknown as { showDirectoryPicker: (options: { mode: 'read' }) => Promise<DirectoryHandleLike> }).showDirectoryPicker;
  let handle: DirectoryHandleLike;
  try {
    handle = await picker({ mode: 'read' });
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') return null;
    throw error;
  }
  const files = new Map<string, Blob>();
  for await (const entry of handle.values()) {
    if (entry.kind === 'file' && entry.getFile) files.set(entry.name, await entry.getFile());
  }
  return { name: handle.name, files };
}
