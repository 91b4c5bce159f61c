// Draws the sample image public/samples/shapes.png (320x240: coloured shapes and a word) with @napi-rs/canvas.
// Deterministic: fixed geometry and colours, no randomness, so re-running it gives the same picture.
// `node scripts/make-sample-image.mjs [out.png]`
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCanvas } from '@napi-rs/canvas';

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const outPath = process.argv[2] ?? join(projectRoot, 'public', 'samples', 'shapes.png');

const width = 320;
const height = 240;
const canvas = createCanvas(width, height);
const g = canvas.getContext('2d');

// Light background with a soft vertical gradient, so the image is not flat.
const background = g.createLinearGradient(0, 0, 0, height);
background.addColorStop(0, '#f4f1e8');
background.addColorStop(1, '#dfe8f1');
g.fillStyle = background;
g.fillRect(0, 0, width, height);

// A red circle (top left).
g.fillStyle = '#d7263d';
g.beginPath();
g.arc(70, 70, 45, 0, Math.PI * 2);
g.fill();

// A blue square (top right), slightly rotated.
g.save();
g.translate(240, 72);
g.rotate(Math.PI / 12);
g.fillStyle = '#1b65b5';
g.fillRect(-40, -40, 80, 80);
g.restore();

// A green triangle (middle).
g.fillStyle = '#2e9e4f';
g.beginPath();
g.moveTo(160, 40);
g.lineTo(205, 130);
g.lineTo(115, 130);
g.closePath();
g.fill();

// A yellow star outline (bottom right).
g.strokeStyle = '#e0a100';
g.lineWidth = 5;
g.beginPath();
for (let i = 0; i < 10; i++) {
  const radius = i % 2 === 0 ? 34 : 14;
  const angle = -Math.PI / 2 + (i * Math.PI) / 5;
  const x = 268 + radius * Math.cos(angle);
  const y = 180 + radius * Math.sin(angle);
  if (i === 0) g.moveTo(x, y);
  else g.lineTo(x, y);
}
g.closePath();
g.stroke();

// A word at a known place (bottom left), for OCR-style prompts.
g.fillStyle = '#1d1d1f';
g.font = 'bold 40px "DejaVu Sans", "Liberation Sans", sans-serif';
g.textBaseline = 'alphabetic';
g.fillText('SHAPES', 18, 205);

mkdirSync(dirname(outPath), { recursive: true });
writeFileSync(outPath, canvas.toBuffer('image/png'));
process.stdout.write(`Wrote ${outPath} (${width}x${height})\n`);
