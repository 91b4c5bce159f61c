import { useId, useState } from 'react';
import { uniformScoresWarning, type AttentionSnapshot, type BudgetPlan, type HeadScoresInfo, type HeadSearchProgress } from '../worker/api';
import { pictureAttention, pictureAttentionMatrix } from './attention-images';
import { AttentionOverlay } from './views/AttentionOverlay';
import { BudgetBars } from './views/BudgetBars';
import { HeadHeatmap } from './views/HeadHeatmap';
import { NeedsModel } from './NeedsModel';
import { ScoreFileControls } from './views/ScoreFileControls';
import type { HeadPosition } from './views/types';

/** A picture of the conversation the overlay can draw on, by the conversation's id. */
export interface OverlayImage {
  id: number;
  name: string;
  url: string;
  width: number;
  height: number;
}

interface VisualHeadsPanelProps {
  modelLoaded: boolean;
  scores: HeadScoresInfo | null;
  /** Budgets of the current policy for the last prompt (or of the last run). */
  budgets: (BudgetPlan & { label: string }) | null;
  selected: HeadPosition | undefined;
  onSelect: (head: HeadPosition) => void;
  searchAvailable: boolean;
  searching: boolean;
  searchProgress: HeadSearchProgress | undefined;
  onFind: () => void;
  probeSamples: number;
  onProbeSamplesChange: (samples: number) => void;
  onCancelSearch: () => void;
  exportText: string | null;
  onImport: (file: File) => void;
  importError: string | undefined;
  exportFileName: string;
  attentionAvailable: boolean;
  attention: AttentionSnapshot | null;
  /** The conversation's pictures (the snapshot names the ones of its prompt by id). */
  images: OverlayImage[];
}

const originLabels: Record<HeadScoresInfo['origin'], string> = {
  search: 'found in this browser',
  import: 'imported from a file',
  cache: 'from the browser cache (an earlier search or import)',
};

/** Visual-head scores (heatmap), the KV budgets they give (bars), and where the selected head looks (overlay). */
export function VisualHeadsPanel(props: VisualHeadsPanelProps) {
  return (
    <section className="panel heads-panel" aria-labelledby="heads-heading" data-testid="visual-heads-panel">
      <h2 id="heads-heading">Visual heads</h2>
      {props.modelLoaded ? (
        <VisualHeadsForms {...props} />
      ) : (
        <NeedsModel>Load a model to find its visual heads, see the KV budget each head gets and where it looks.</NeedsModel>
      )}
    </section>
  );
}

/** The panel's parts once a model is loaded. */
function VisualHeadsForms(props: VisualHeadsPanelProps) {
  const { scores, budgets, selected, attention, images } = props;
  const samplesId = useId();
  const pictureChoiceId = useId();
  const heatmapChoiceId = useId();
  /** What the heatmap colours: the visual-head scores, or the last answer's attention on one picture (its index). */
  const [heatmapPicture, setHeatmapPicture] = useState<number | null>(null);
  /** Which picture of the recorded prompt the overlay shows (index into attention.images). */
  const [pictureIndex, setPictureIndex] = useState(0);
  const promptImages = attention?.images ?? [];
  const shownIndex = pictureIndex < promptImages.length ? pictureIndex : 0;
  const picked = attention && selected ? pictureAttention(attention, selected.layer, selected.head, shownIndex) : null;
  const image = picked ? (images.find((candidate) => candidate.id === picked.image.id) ?? null) : null;
  const heatmapIndex = heatmapPicture !== null && heatmapPicture < promptImages.length ? heatmapPicture : null;
  const heatmapImage = heatmapIndex !== null ? promptImages[heatmapIndex] : null;

  return (
    <>
      <div className="field inline-field">
        <label htmlFor={samplesId}>Probe images for the search</label>
        <input
          id={samplesId}
          type="number"
          min={1}
          max={1000}
          step={1}
          value={props.probeSamples}
          disabled={props.searching}
          onChange={(e) => {
            const value = Math.round(e.target.valueAsNumber);
            if (Number.isFinite(value)) props.onProbeSamplesChange(Math.min(1000, Math.max(1, value)));
          }}
        />
      </div>
      <ScoreFileControls
        onFindVisualHeads={props.onFind}
        searching={props.searching}
        progress={props.searchProgress}
        onCancel={props.onCancelSearch}
        onExport={() => props.exportText}
        exportFileName={props.exportFileName}
        canExport={props.exportText !== null}
        onImport={props.onImport}
        importError={props.importError}
      />
      {!props.searchAvailable && (
        <p className="muted small" data-testid="search-unavailable">
          Find visual heads is not available yet in this build (the search engine module has not landed); import a score file instead.
        </p>
      )}
      {scores && (
        <p className="muted small" data-testid="scores-origin">
          Scores {originLabels[scores.origin]}, {scores.samples} probe {scores.samples === 1 ? 'sample' : 'samples'} per head.
        </p>
      )}
      {promptImages.length > 0 && (
        <div className="field inline-field">
          <label htmlFor={heatmapChoiceId}>Heatmap</label>
          <select
            id={heatmapChoiceId}
            data-testid="heatmap-source"
            value={heatmapIndex ?? 'scores'}
            onChange={(event) => setHeatmapPicture(event.target.value === 'scores' ? null : Number(event.target.value))}
          >
            <option value="scores">Visual-head scores</option>
            {promptImages.map((promptImage, index) => (
              <option key={promptImage.id} value={index}>
                Attention on {index + 1}. {promptImage.name} (last answer)
              </option>
            ))}
          </select>
        </div>
      )}
      <HeadHeatmap
        scores={heatmapImage && attention ? pictureAttentionMatrix(attention, heatmapIndex ?? 0) : (scores?.matrix ?? [])}
        label={heatmapImage ? `Share of the last token's attention on ${heatmapImage.name}, by layer and head` : undefined}
        valueLabel={heatmapImage ? `Attention on ${heatmapImage.name}` : undefined}
        valueName={heatmapImage ? 'Attention' : undefined}
        // Without scores (the attention heatmap before any search) the budgets' [layer][KV head] shape gives the groups.
        kvHeads={scores?.kvHeads ?? budgets?.capacities[0]?.length ?? 0}
        capacities={budgets?.capacities}
        selected={selected}
        onSelect={(layer, head) => props.onSelect({ layer, head })}
      />

      <h3>KV budget per head</h3>
      {!scores && (
        <p className="status warning small" data-testid="uniform-scores-note">
          {uniformScoresWarning} Find visual heads or import a score file above.
        </p>
      )}
      {budgets ? (
        <>
          {budgets.warnings.filter((warning) => !warning.startsWith(uniformScoresWarning)).map((warning) => (
            <p key={warning} className="status warning small">
              {warning}
            </p>
          ))}
          {!budgets.compressed && (
            <p className="muted small">
              {budgets.label === 'Full cache'
                ? `The full cache keeps the whole prompt (${budgets.promptLength} tokens) in every head.`
                : `The last prompt (${budgets.promptLength} tokens) is shorter than the budget: every head keeps the whole prompt.`}
            </p>
          )}
          <BudgetBars capacities={budgets.capacities} windowLength={budgets.windowLength} policyLabel={budgets.label} />
        </>
      ) : (
        <p className="muted small">The budgets depend on the prompt length: ask a question first.</p>
      )}

      <h3>Where the selected head looks</h3>
      {!props.attentionAvailable ? (
        <p className="muted small" data-testid="attention-unavailable">
          The attention overlay is not available yet in this build (the attention recorder has not landed).
        </p>
      ) : !selected ? (
        <p className="muted small">Select a head in the heatmap.</p>
      ) : !attention || !picked || !image ? (
        <p className="muted small">Ask a question about a picture with the full cache to record where each head looks.</p>
      ) : (
        <>
          {promptImages.length > 1 && (
            <div className="field inline-field">
              <label htmlFor={pictureChoiceId}>Picture</label>
              <select id={pictureChoiceId} data-testid="overlay-picture" value={shownIndex} onChange={(event) => setPictureIndex(Number(event.target.value))}>
                {promptImages.map((promptImage, index) => (
                  <option key={promptImage.id} value={index}>
                    {index + 1}. {promptImage.name} ({promptImage.imageTokens} tokens)
                  </option>
                ))}
              </select>
            </div>
          )}
          <AttentionOverlay
            imageUrl={image.url}
            imageWidth={image.width}
            imageHeight={image.height}
            resizedWidth={picked.image.layout.resizedWidth}
            resizedHeight={picked.image.layout.resizedHeight}
            geometry={{ rows: picked.image.layout.rows, cols: picked.image.layout.cols, tokensPerSide: picked.image.layout.tokensPerSide }}
            weights={picked.weights}
            showGlobal={false}
            headLabel={`Layer ${selected.layer}, head ${selected.head}`}
            maxDisplayWidth={420}
            maxDisplayHeight={420}
          />
        </>
      )}
    </>
  );
}
