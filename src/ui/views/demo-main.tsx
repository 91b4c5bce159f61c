/** Entry of views-demo.html: mounts the views demo page on its own, without the engine worker. */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { ViewsDemo } from './ViewsDemo';

const root = document.getElementById('root');
if (!root) throw new Error('views-demo.html has no #root element');
createRoot(root).render(
  <StrictMode>
    <ViewsDemo />
  </StrictMode>,
);
