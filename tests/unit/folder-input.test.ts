import { describe, expect, it } from 'vitest';
import { readDroppedDirectory, type DirectoryEntryLike, type FileEntryLike, type FolderEntry } from '../../src/ui/folder-input';

function fileEntry(name: string, text: string): FileEntryLike {
  return { isFile: true, isDirectory: false, name, file: (ok) => ok(new File([text], name)) };
}

/** A directory whose reader hands out its entries in batches of `batch`, then an empty batch (as Chrome does). */
function directory(name: string, entries: FolderEntry[], batch = 2): DirectoryEntryLike {
  return {
    isFile: false,
    isDirectory: true,
    name,
    createReader() {
      let next = 0;
      return {
        readEntries(ok) {
          ok(entries.slice(next, next + batch));
          next += batch;
        },
      };
    },
  };
}

describe('reading a dropped model folder', () => {
  it('reads every top-level file across readEntries batches and skips subfolders', async () => {
    const folder = await readDroppedDirectory(
      directory('SmolVLM', [
        fileEntry('config.json', '{}'),
        fileEntry('model.safetensors', 'weights'),
        directory('onnx', [fileEntry('x.onnx', '')]),
        fileEntry('tokenizer.json', 'tok'),
        fileEntry('preprocessor_config.json', 'pp'),
      ]),
    );
    expect(folder.name).toBe('SmolVLM');
    expect([...folder.files.keys()].sort()).toEqual(['config.json', 'model.safetensors', 'preprocessor_config.json', 'tokenizer.json']);
    expect(await (folder.files.get('model.safetensors') as Blob).text()).toBe('weights');
  });

  it('reports a read failure instead of hanging', async () => {
    const broken: DirectoryEntryLike = {
      isFile: false,
      isDirectory: true,
      name: 'x',
      createReader: () => ({ readEntries: (_ok, fail) => fail?.(new Error('permission denied')) }),
    };
    await expect(readDroppedDirectory(broken)).rejects.toThrow(/permission denied/);
  });
});
