import { useEffect, useState } from 'react';
import type { EngineEvent, EngineFeatures, InitResult } from '../../worker/api';
import { errorMessage } from '../../errors';
import { eventProxy, getEngine } from '../engine-client';

const noFeatures: EngineFeatures = { visualHeadSearch: false, attentionMaps: false, benchmark: false };

/**
 * Starts the engine (its GPU device), reads what it can do, and follows what it reports on its own (device loss and
 * recovery) into the page's alert and notice lines.
 */
export function useEngineEvents() {
  const [gpuStatus, setGpuStatus] = useState<InitResult | null>(null);
  const [features, setFeatures] = useState<EngineFeatures>(noFeatures);
  const [recoveringDevice, setRecoveringDevice] = useState(false);
  const [alertMessage, setAlertMessage] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  useEffect(() => {
    let cancelled = false;
    const engine = getEngine();
    engine.init().then(
      (result) => {
        if (!cancelled) setGpuStatus(result);
      },
      (error: unknown) => {
        // The worker itself failed to start (e.g. a blocked script): report it like a missing adapter.
        if (!cancelled) setGpuStatus({ ok: false, error: `The engine worker failed: ${errorMessage(error)}` });
      },
    );
    engine.features().then((f) => !cancelled && setFeatures(f), () => undefined);
    void engine.onEvent(
      eventProxy((event: EngineEvent) => {
        if (event.type === 'device-lost') {
          setAlertMessage(event.message);
          setRecoveringDevice(true);
        } else if (event.type === 'device-restored') {
          setAlertMessage(null);
          setNotice(event.message);
          setRecoveringDevice(false);
        } else {
          setAlertMessage(event.message);
          setRecoveringDevice(false);
        }
      }),
    );
    return () => {
      cancelled = true;
    };
  }, []);

  return { gpuStatus, features, recoveringDevice, alertMessage, setAlertMessage, notice, setNotice };
}
