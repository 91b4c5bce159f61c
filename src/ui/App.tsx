import { useCallback, useEffect, useRef, useState } from 'react';
import type { AskOptions, BudgetPlan, CompareMeasurements, ModelSummary, RunResult } from '../worker/api';
import { errorMessage } from '../errors';
import { AdapterPanel } from './AdapterPanel';
import { BenchmarkPanel } from './BenchmarkPanel';
import { BudgetSweepPanel } from './BudgetSweepPanel';
import { OcrAccuracyPanel } from './OcrAccuracyPanel';
import { whyQuestionsWait } from './busy';
import { ChatPanel } from './ChatPanel';
import { getEngine, tokenProxy } from './engine-client';
import { useBenchmark } from './hooks/useBenchmark';
import { useEngineEvents } from './hooks/useEngineEvents';
import { useConversationImages } from './hooks/useConversationImages';
import { useConversationVideos } from './hooks/useConversationVideos';
import { useVisualHeads } from './hooks/useVisualHeads';
import { ContextMeter } from './ContextMeter';
import { ImageDrop } from './ImageDrop';
import { PendingImages } from './PendingImages';
import { PendingVideos, VideoFitOffer, VideoProgressBar, VideoSamplingFields } from './PendingVideos';
import { splitMediaFiles } from './video-view';
import { MetricsView } from './MetricsView';
import { ModelPanel } from './ModelPanel';
import { NeedsModel } from './NeedsModel';
import { PlaceholderPanel } from './PlaceholderPanel';
import { describePolicy, PolicyControls, type PolicySettings } from './PolicyControls';
import { applyToken, failTurn, finishTurn, sayUniformScoresNoteOnce, type ChatTurn } from './transcript';
import { readUrlOptions } from './url-params';
import { VisualHeadsPanel } from './VisualHeadsPanel';

/** Parsed once: the page URL does not change while the app runs. */
const urlOptions = readUrlOptions(window.location.search);

const defaultSettings: PolicySettings = { policy: 'sparsemm', budget: 256, window: 32, ratio: 0.1, maxNewTokens: 32, compare: false };

function askOptions(settings: PolicySettings): AskOptions {
  const { policy, budget, window, ratio, maxNewTokens } = settings;
  return { policy, budget, window, ratio, maxNewTokens };
}

/** A file name for exported scores: the model's name with anything unusual replaced. */
function scoresFileName(summary: ModelSummary | null): string {
  const base = (summary?.name ?? 'model').replace(/^https?:\/\//, '').replace(/[^\w.-]+/g, '_').replace(/^_+|_+$/g, '');
  return `${base || 'model'}-visual-head-scores.json`;
}

/** Ids of the pictures and videos sent with the running question (until the worker's lists say they are sent). */
interface InFlight {
  images: ReadonlySet<number>;
  videos: ReadonlySet<number>;
}
const nothingInFlight: InFlight = { images: new Set(), videos: new Set() };

export function App() {
  const { gpuStatus, features, recoveringDevice, alertMessage, setAlertMessage, notice, setNotice } = useEngineEvents();
  const [model, setModel] = useState<ModelSummary | null>(null);
  const [settings, setSettings] = useState<PolicySettings>(defaultSettings);
  const [turns, setTurns] = useState<ChatTurn[]>([]);
  const [running, setRunning] = useState(false);
  const [lastRuns, setLastRuns] = useState<RunResult[]>([]);
  /** The last comparison's measurements (the Metrics table compares the two runs with them); null after a plain answer. */
  const [lastComparison, setLastComparison] = useState<CompareMeasurements | null>(null);
  const [plan, setPlan] = useState<BudgetPlan | null>(null);
  const [modelLoading, setModelLoading] = useState(false);
  const [sweepRunning, setSweepRunning] = useState(false);
  const [ocrRunning, setOcrRunning] = useState(false);
  const nextTurnId = useRef(1);
  /** The "No visual-head scores" note went with an answer of this model already (see sayUniformScoresNoteOnce). */
  const uniformNoteSaid = useRef(false);

  const showError = useCallback((message: string) => setAlertMessage(message), [setAlertMessage]);
  const heads = useVisualHeads(showError);
  const { scores, searching, setAttention } = heads;
  const benchmark = useBenchmark();
  // Any worker job but a question: while one runs, nothing that needs the engine may start.
  const jobRunning = benchmark.running || sweepRunning || ocrRunning;
  const pictures = useConversationImages(showError, model !== null);
  /** Pictures and videos that went with the question being answered: shown in its turn, no longer among the waiting ones. */
  const [inFlight, setInFlight] = useState<InFlight>(nothingInFlight);
  const pendingImages = pictures.images.filter((image) => !image.info.sent && !inFlight.images.has(image.info.id));
  const refreshPictures = pictures.refresh;
  const videos = useConversationVideos(showError, model !== null, refreshPictures, settings.maxNewTokens);
  const pendingVideos = videos.videos.filter((video) => !video.info.sent && !inFlight.videos.has(video.info.id));
  const refreshVideos = videos.refresh;
  /** Pictures and videos dropped, pasted or picked together: each kind goes its own way, in order. */
  const addPictures = pictures.addFiles;
  const addVideos = videos.add;
  const addMedia = useCallback(
    (files: File[]) => {
      const { pictures: pictureFiles, videos: videoFiles } = splitMediaFiles(files);
      if (pictureFiles.length > 0) addPictures(pictureFiles);
      if (videoFiles.length > 0) addVideos(videoFiles);
    },
    [addPictures, addVideos],
  );

  // Budgets follow the policy controls, for the last prompt's length.
  const { policy, budget, window, ratio, maxNewTokens } = settings;
  useEffect(() => {
    if (!model) return;
    let cancelled = false;
    getEngine()
      .planBudgets({ policy, budget, window, ratio, maxNewTokens })
      .then(
        (next) => !cancelled && setPlan(next),
        // Invalid combinations (e.g. a window as large as the budget) show no bars; asking reports the error.
        () => !cancelled && setPlan(null),
      );
    return () => {
      cancelled = true;
    };
  }, [model, policy, budget, window, ratio, maxNewTokens, scores, turns.length, running]);

  // While a model loads nothing else may run; a failed load leaves the previous model (and its chat) in place.
  const onLoadStart = () => setModelLoading(true);
  const onLoadEnded = (active: ModelSummary | null) => {
    setModelLoading(false);
    // A load that failed on the GPU had already freed the previous model; the transcript stays readable.
    if (active === null) setModel(null);
  };

  const onLoaded = (summary: ModelSummary) => {
    setModelLoading(false);
    setModel(summary);
    // A new model starts a new conversation (the worker dropped its history too).
    setTurns([]);
    setLastRuns([]);
    setLastComparison(null);
    heads.resetForModel();
    uniformNoteSaid.current = false;
    // The pictures and videos stay, waiting for the new model's first question; their tokens follow its processor.
    void Promise.all([refreshPictures(), refreshVideos()]).catch((error: unknown) => showError(errorMessage(error)));
  };

  /** Resolves true once the worker accepted the question (first token or a finished run), false on a refusal. */
  const ask = (question: string): Promise<boolean> => {
    const id = nextTurnId.current++;
    let accept: (accepted: boolean) => void = () => undefined;
    const accepted = new Promise<boolean>((resolve) => (accept = resolve));
    const options = askOptions(settings);
    const compare = settings.compare && settings.policy !== 'full';
    const labels = compare ? ['Full cache', describePolicy(options)] : [describePolicy(options)];
    const sentImages = pendingImages.map(({ info, url }) => ({ id: info.id, name: info.name, url }));
    const sentVideos = [...pendingVideos];
    setInFlight({ images: new Set(sentImages.map((image) => image.id)), videos: new Set(sentVideos.map((video) => video.info.id)) });
    setTurns((previous) => [
      ...previous,
      { id, question, images: sentImages, videos: sentVideos, compare, answers: labels.map((label) => ({ label, text: '', tokens: 0, streaming: true })) },
    ]);
    setRunning(true);
    setAlertMessage(null);
    const onToken = tokenProxy((event) => {
      accept(true);
      setTurns((previous) => applyToken(previous, id, event));
    });
    const engine = getEngine();
    const finished: Promise<{ results: (RunResult | null)[]; measurements?: CompareMeasurements }> = compare
      ? engine.compare(question, options, onToken).then((result) => ({ results: [result.full, result.policy], measurements: result.measurements }))
      : engine.ask(question, options, onToken).then((result) => ({ results: [result] }));
    finished
      .then(
        async ({ results: finishedResults, measurements }) => {
          accept(true);
          const { results, said } = sayUniformScoresNoteOnce(finishedResults, uniformNoteSaid.current);
          uniformNoteSaid.current = said;
          setTurns((previous) => finishTurn(previous, id, results, measurements));
          setLastRuns(results.filter((r): r is RunResult => r !== null));
          setLastComparison(measurements ?? null);
          if (features.attentionMaps) setAttention(await engine.lastAttention());
        },
        (error: unknown) => {
          accept(false);
          const message = errorMessage(error);
          setTurns((previous) => failTurn(previous, id, message));
          showError(message);
        },
      )
      .finally(() => {
        setRunning(false);
        // Sent pictures and the conversation's tokens changed (or, after a refusal, the pictures still wait).
        void Promise.all([refreshPictures(), refreshVideos()])
          .catch((error: unknown) => showError(errorMessage(error)))
          .finally(() => setInFlight(nothingInFlight));
      });
    return accepted;
  };

  const newChat = () => {
    getEngine()
      .newChat()
      .then(
        async () => {
          setTurns([]);
          setNotice(null);
          setAttention(null);
          await Promise.all([refreshPictures(), refreshVideos()]);
        },
        (error: unknown) => showError(errorMessage(error)),
      );
  };

  const simulateDeviceLoss = () => {
    getEngine()
      .simulateDeviceLoss()
      .catch((error: unknown) => showError(errorMessage(error)));
  };

  const blockedReason = whyQuestionsWait({
    modelLoading, modelLoaded: model !== null, recoveringDevice, searching, benchmarkRunning: benchmark.running, sweepRunning, ocrRunning,
  });
  // The sweep and OCR panels start worker jobs too: not while a question is answered.
  const jobBlocked = blockedReason ?? (running ? 'Wait for the answer (or press Stop) first.' : null);
  const budgetView = plan ? { ...plan, label: describePolicy(settings) } : null;

  return (
    <div className="app">
      <header className="app-header">
        <h1>SparseMM Web</h1>
        <p className="tagline">
          SmolVLM and SmolVLM2 in your browser on WebGPU, answering about pictures and videos with a head-wise sparse KV
          cache that keeps more tokens for the heads that look at them.
        </p>
      </header>
      <div className="alerts" role="alert" data-testid="app-alert">
        {alertMessage && (
          <div className="status error alert-banner">
            <p className="error-text" data-testid="alert-text">
              {alertMessage}
            </p>
            <button type="button" className="secondary small-button" onClick={() => setAlertMessage(null)}>
              Dismiss
            </button>
          </div>
        )}
      </div>
      {notice && (
        <p className="status ok notice" role="status">
          {notice}{' '}
          <button type="button" className="secondary small-button" onClick={() => setNotice(null)}>
            Dismiss
          </button>
        </p>
      )}
      <main className="layout">
        <div className="column side">
          <AdapterPanel status={gpuStatus}>
            <details className="diagnostics">
              <summary>Diagnostics</summary>
              <p className="muted small">
                Destroys the GPU device as a driver reset would: the engine reports it, makes a new device and reloads the model from the
                cache. The chat stays.
              </p>
              <button
                type="button"
                className="secondary small-button"
                data-testid="simulate-device-loss"
                // Enabled while an answer (or another job) runs: a loss mid-prefill or mid-decode is what it is for.
                disabled={!model || modelLoading || recoveringDevice}
                onClick={simulateDeviceLoss}
              >
                Simulate a GPU device loss
              </button>
            </details>
          </AdapterPanel>
          <ModelPanel initialUrl={urlOptions.modelUrl} autoload={urlOptions.autoload} initialWeightFormat={urlOptions.weightFormat} onLoadStart={onLoadStart} onLoaded={onLoaded} onLoadEnded={onLoadEnded} />
        </div>
        <div className="column center">
          <ChatPanel
            turns={turns}
            running={running}
            blockedReason={blockedReason}
            needsModel={model === null && !modelLoading}
            onAsk={ask}
            onQuestionChange={pictures.setQuestion}
            onStop={() => void getEngine().stop()}
            onNewChat={newChat}
            newChatEnabled={turns.length > 0 || pictures.images.length > 0 || videos.videos.length > 0}
            composer={
              <>
                <PendingImages images={pendingImages} onRemove={pictures.remove} onRemoveAll={pictures.removeAll} disabled={running || pictures.busy} />
                <PendingVideos videos={pendingVideos} onRemove={videos.remove} disabled={running || videos.busy} />
                <VideoProgressBar progress={videos.progress} />
                <VideoFitOffer offer={videos.offer} onAccept={videos.acceptOffer} onDismiss={videos.dismissOffer} disabled={running || videos.busy} />
                <ContextMeter
                  usage={pictures.usage}
                  maxNewTokens={settings.maxNewTokens}
                  pictures={pictures.images.length}
                  onLongestEdgeChange={pictures.setLongestEdge}
                  disabled={running || searching || jobRunning || modelLoading}
                />
              </>
            }
          >
            <ImageDrop
              onFiles={addMedia}
              onAddSamples={pictures.addSamples}
              onAddSampleVideo={videos.sampling ? videos.addSample : undefined}
              busy={pictures.busy || videos.busy}
              disabled={running || searching || jobRunning || modelLoading}
            />
            {videos.sampling && videos.modelSampling && (
              <VideoSamplingFields
                sampling={videos.sampling}
                modelDefault={videos.modelSampling}
                onChange={videos.setSampling}
                disabled={running || videos.busy}
              />
            )}
            <PolicyControls settings={settings} onChange={setSettings} disabled={running} />
          </ChatPanel>
        </div>
        <div className="column heads">
          <VisualHeadsPanel
            modelLoaded={model !== null}
            scores={scores}
            budgets={budgetView}
            selected={heads.selectedHead}
            onSelect={heads.setSelectedHead}
            searchAvailable={features.visualHeadSearch}
            searching={searching}
            searchProgress={heads.searchProgress}
            onFind={heads.findHeads}
            probeSamples={heads.probeSamples}
            onProbeSamplesChange={heads.setProbeSamples}
            onCancelSearch={() => void getEngine().stop()}
            exportText={heads.exportText}
            onImport={heads.importScores}
            importError={heads.importError}
            exportFileName={scoresFileName(model)}
            attentionAvailable={features.attentionMaps}
            attention={heads.attention}
            images={[
              ...pictures.images.map(({ info, url }) => ({ id: info.id, name: info.name, url, width: info.width, height: info.height })),
              // Each sampled frame of a video is a picture of the prompt (one tile), drawn from its strip thumbnail.
              ...videos.videos.flatMap(({ info, frameUrls }) =>
                info.frames.map((frame, i) => ({ id: frame.id, name: `${info.name} frame ${frame.label}`, url: frameUrls[i], width: info.width, height: info.height })),
              ),
            ]}
          />
        </div>
        <div className="column wide">
          <MetricsView runs={lastRuns} comparison={lastComparison} />
          <BudgetSweepPanel modelLoaded={model !== null} loadedWeights={model?.weights ?? null} window={settings.window} ratio={settings.ratio} maxNewTokens={settings.maxNewTokens}
            blockedReason={jobBlocked} onRunningChange={setSweepRunning} />
          {features.benchmark ? (
            <section className="panel scroll-x" aria-labelledby="benchmark-heading" data-testid="benchmark-section">
              <h2 id="benchmark-heading">Benchmark</h2>
              {model ? (
                <>
                  <BenchmarkPanel
                    report={benchmark.report}
                    running={benchmark.running}
                    progress={benchmark.progress}
                    onRun={benchmark.run}
                    error={benchmark.error}
                  />
                  <OcrAccuracyPanel window={settings.window} ratio={settings.ratio} blockedReason={jobBlocked} onRunningChange={setOcrRunning} />
                </>
              ) : (
                <NeedsModel>Load a model to benchmark it on this GPU and to measure OCR accuracy.</NeedsModel>
              )}
            </section>
          ) : (
            <PlaceholderPanel id="benchmark" title="Benchmark" />
          )}
        </div>
      </main>
    </div>
  );
}
