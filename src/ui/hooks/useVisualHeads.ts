import { useCallback, useState } from 'react';
import type { AttentionSnapshot, HeadScoresInfo, HeadSearchProgress } from '../../worker/api';
import { errorMessage } from '../../errors';
import { getEngine, searchProgressProxy } from '../engine-client';
import type { HeadPosition } from '../views/types';

/** The visual-head panel's state: the model's scores (search, import, export), the selected head and its attention. */
export function useVisualHeads(showError: (message: string) => void) {
  const [scores, setScores] = useState<HeadScoresInfo | null>(null);
  const [exportText, setExportText] = useState<string | null>(null);
  const [importError, setImportError] = useState<string | undefined>();
  const [selectedHead, setSelectedHead] = useState<HeadPosition | undefined>();
  const [searching, setSearching] = useState(false);
  const [searchProgress, setSearchProgress] = useState<HeadSearchProgress | undefined>();
  const [attention, setAttention] = useState<AttentionSnapshot | null>(null);
  const [probeSamples, setProbeSamples] = useState(16);

  const refreshScores = useCallback(async () => {
    const engine = getEngine();
    const [info, text] = await Promise.all([engine.headScores(), engine.exportHeadScores()]);
    setScores(info);
    setExportText(text);
  }, []);

  /** A new model: its own scores, no selection, no attention. */
  const resetForModel = () => {
    setAttention(null);
    setSelectedHead(undefined);
    setImportError(undefined);
    void refreshScores().catch((error: unknown) => showError(errorMessage(error)));
  };

  const importScores = (file: File) => {
    file
      .text()
      .then((text) => getEngine().importHeadScores(text))
      .then(
        async () => {
          setImportError(undefined);
          await refreshScores();
        },
        (error: unknown) => setImportError(`${file.name}: ${errorMessage(error)}`),
      );
  };

  const findHeads = () => {
    setSearching(true);
    setSearchProgress(undefined);
    getEngine()
      .findVisualHeads({ samples: probeSamples }, searchProgressProxy((p) => setSearchProgress(p)))
      .then(
        () => refreshScores(),
        (error: unknown) => showError(errorMessage(error)),
      )
      .finally(() => setSearching(false));
  };

  return {
    scores,
    exportText,
    importError,
    selectedHead,
    setSelectedHead,
    searching,
    searchProgress,
    attention,
    setAttention,
    probeSamples,
    setProbeSamples,
    resetForModel,
    importScores,
    findHeads,
  };
}
