import { useEffect, useMemo, useState } from 'react';
import { AttentionOverlay } from './AttentionOverlay';
import { BudgetBars } from './BudgetBars';
import { demoAttention, demoCapacities, demoGeometry, demoImage, demoImageUrl, demoKvHeads, demoRuns, demoScores, demoWindow } from './demo-data';
import { HeadHeatmap } from './HeadHeatmap';
import { MetricsPanel } from './MetricsPanel';
import { ScoreFileControls } from './ScoreFileControls';
import type { HeadPosition, SearchProgress } from './types';
import './views.css';
import { errorMessage } from '../../errors';

const demoProbeImages = 40;

/** All views with synthetic, deterministic sample data, for looking at them without a model. */
export function ViewsDemo() {
  const scores = useMemo(() => demoScores(), []);
  const capacities = useMemo(() => demoCapacities(scores), [scores]);
  const attention = useMemo(() => demoAttention(), []);
  const runs = useMemo(() => demoRuns(), []);
  const imageUrl = useMemo(() => demoImageUrl(), []);
  const [selected, setSelected] = useState<HeadPosition>({ layer: 14, head: 4 });
  const [showGlobal, setShowGlobal] = useState(false);
  const [searching, setSearching] = useState(false);
  const [progress, setProgress] = useState<SearchProgress>({ done: 0, total: demoProbeImages });
  const [importError, setImportError] = useState<string | undefined>();

  // Demo only: the "search" is a timer that counts probe images up, to show the progress bar.
  const running = searching && progress.done < progress.total;
  useEffect(() => {
    if (!running) return;
    const timer = setInterval(() => {
      setProgress((current) => ({ ...current, done: Math.min(current.total, current.done + 1) }));
    }, 150);
    return () => clearInterval(timer);
  }, [running]);

  const importScores = (file: File) => {
    file.text().then(
      (text) => {
        try {
          JSON.parse(text);
          setImportError(undefined);
        } catch (error) {
          setImportError(errorMessage(error));
        }
      },
      (error: unknown) => setImportError(String(error)),
    );
  };

  return (
    <main className="vw-demo">
      <h1>SparseMM Web — views demo</h1>
      <p className="vw-demo-banner" role="note">
        Demo data: every number and picture on this page is synthetic (seeded random), not the output of a model.
      </p>

      <section className="vw-demo-section" aria-labelledby="demo-heads">
        <h2 id="demo-heads">Visual heads</h2>
        <ScoreFileControls
          onFindVisualHeads={() => {
            setProgress({ done: 0, total: demoProbeImages });
            setSearching(true);
          }}
          searching={running}
          progress={progress}
          onCancel={() => setSearching(false)}
          onExport={() => JSON.stringify(Object.fromEntries(scores.flatMap((row, l) => row.map((s, h) => [`${l}-${h}`, [s]]))))}
          canExport
          onImport={importScores}
          importError={importError}
        />
        <HeadHeatmap scores={scores} kvHeads={demoKvHeads} capacities={capacities} selected={selected} onSelect={(layer, head) => setSelected({ layer, head })} />
      </section>

      <section className="vw-demo-section" aria-labelledby="demo-budgets">
        <h2 id="demo-budgets">KV budgets</h2>
        <BudgetBars capacities={capacities} windowLength={demoWindow} policyLabel="SparseMM-like split, budget 256 (demo)" />
      </section>

      <section className="vw-demo-section" aria-labelledby="demo-overlay">
        <h2 id="demo-overlay">Where a head looks</h2>
        <AttentionOverlay
          imageUrl={imageUrl}
          imageWidth={demoImage.width}
          imageHeight={demoImage.height}
          resizedWidth={demoImage.resizedWidth}
          resizedHeight={demoImage.resizedHeight}
          geometry={demoGeometry}
          weights={attention}
          showGlobal={showGlobal}
          onShowGlobalChange={setShowGlobal}
          headLabel={`Layer ${selected.layer}, head ${selected.head}`}
        />
      </section>

      <section className="vw-demo-section" aria-labelledby="demo-metrics">
        <h2 id="demo-metrics">Metrics</h2>
        <MetricsPanel runs={runs} />
      </section>
    </main>
  );
}
