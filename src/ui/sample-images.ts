/** The committed sample pictures (public/samples/samples.json): the list's format, checked, and fetching them as files. */

export interface SampleImage {
  /** File name inside samples/ (a plain name, no folders). */
  file: string;
  description: string;
}

/** Parses samples.json: a list of {file, description}; anything else is refused with what is wrong. */
export function parseSampleList(json: unknown): SampleImage[] {
  if (!Array.isArray(json)) throw new Error('samples.json must be a list of {"file", "description"} entries.');
  return json.map((entry: unknown, i) => {
    const { file, description } = (entry ?? {}) as { file?: unknown; description?: unknown };
    if (typeof file !== 'string' || !/^[\w.-]+$/.test(file) || file.startsWith('.')) {
      throw new Error(`samples.json entry ${i + 1} needs a plain file name (got ${JSON.stringify(file)}).`);
    }
    return { file, description: typeof description === 'string' ? description : '' };
  });
}

/** Fetches every sample picture below `baseUrl` (the samples folder, ending in "/") as a File, in the list's order. */
export async function fetchSampleImages(baseUrl: string, fetchFile: typeof fetch = fetch): Promise<File[]> {
  const listResponse = await fetchFile(new URL('samples.json', baseUrl));
  if (!listResponse.ok) throw new Error(`The sample list could not be loaded (HTTP ${listResponse.status}).`);
  const samples = parseSampleList(await listResponse.json());
  return Promise.all(
    samples.map(async ({ file }) => {
      const response = await fetchFile(new URL(file, baseUrl));
      if (!response.ok) throw new Error(`The sample ${file} could not be loaded (HTTP ${response.status}).`);
      const blob = await response.blob();
      return new File([blob], file, { type: blob.type || 'image/png' });
    }),
  );
}
