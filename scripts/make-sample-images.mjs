// Draws the multi-image samples under public/samples/ with @napi-rs/canvas: a bar chart, a page of text and a table
// (with shapes.png from make-sample-image.mjs they are what "Add sample images" puts into a conversation), and
// samples.json, the list the app reads. Deterministic: fixed data, geometry and colours.
// `node scripts/make-sample-images.mjs [out-dir]`
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCanvas } from '@napi-rs/canvas';

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = process.argv[2] ?? join(projectRoot, 'public', 'samples');
const sans = '"DejaVu Sans", "Liberation Sans", sans-serif';
const serif = '"DejaVu Serif", "Liberation Serif", serif';

function write(name, canvas, description) {
  writeFileSync(join(outDir, name), canvas.toBuffer('image/png'));
  process.stdout.write(`Wrote ${join(outDir, name)} (${canvas.width}x${canvas.height})\n`);
  return { file: name, description };
}

/** A width x height canvas filled with `background`, and its 2D context. */
function blankCanvas(width, height, background) {
  const canvas = createCanvas(width, height);
  const g = canvas.getContext('2d');
  g.fillStyle = background;
  g.fillRect(0, 0, width, height);
  return { canvas, g };
}

function barChart() {
  const { canvas, g } = blankCanvas(480, 320, '#ffffff');
  g.fillStyle = '#1d1d1f';
  g.font = `bold 20px ${sans}`;
  g.fillText('Rainfall per month (mm)', 24, 34);
  const data = [['Jan', 78], ['Feb', 52], ['Mar', 61], ['Apr', 44], ['May', 30], ['Jun', 18]];
  const left = 56;
  const bottom = 280;
  const top = 60;
  const scale = (bottom - top) / 80;
  g.strokeStyle = '#9aa0a6';
  g.lineWidth = 1;
  g.font = `13px ${sans}`;
  for (let v = 0; v <= 80; v += 20) {
    const y = bottom - v * scale;
    g.beginPath();
    g.moveTo(left, y);
    g.lineTo(456, y);
    g.stroke();
    g.fillStyle = '#5f6368';
    g.fillText(String(v), 24, y + 4);
  }
  const colours = ['#1b65b5', '#1b65b5', '#1b65b5', '#1b65b5', '#1b65b5', '#d7263d'];
  data.forEach(([month, value], i) => {
    const x = left + 14 + i * 66;
    g.fillStyle = colours[i];
    g.fillRect(x, bottom - value * scale, 44, value * scale);
    g.fillStyle = '#1d1d1f';
    g.fillText(month, x + 8, bottom + 20);
    g.fillText(String(value), x + 12, bottom - value * scale - 6);
  });
  return write('bar-chart.png', canvas, 'A bar chart: rainfall per month, January to June');
}

function textPage() {
  const { canvas, g } = blankCanvas(400, 520, '#fbfaf6');
  g.fillStyle = '#1d1d1f';
  g.font = `bold 22px ${serif}`;
  g.fillText('Notes on the harbour', 32, 52);
  g.font = `15px ${serif}`;
  const lines = [
    'The harbour was built in 1842 to shelter',
    'the fishing fleet from the winter storms.',
    'Its stone wall is 410 metres long and the',
    'lighthouse at its end shows a green light',
    'every six seconds.',
    '',
    'Three ferries leave each morning: at 7:15,',
    'at 9:40 and at 11:05. The last boat back',
    'from the island departs at 18:30.',
    '',
    'Visitors may walk along the wall between',
    'April and October. In bad weather the',
    'gate is closed and a red flag is raised',
    'above the harbour office.',
  ];
  lines.forEach((line, i) => g.fillText(line, 32, 92 + i * 26));
  g.font = `italic 13px ${serif}`;
  g.fillStyle = '#5f6368';
  g.fillText('Page 3', 176, 496);
  return write('text-page.png', canvas, 'A page of text: notes on a harbour (dates, times, lengths)');
}

function table() {
  const { canvas, g } = blankCanvas(480, 260, '#ffffff');
  const rows = [
    ['City', 'Population', 'Area (km²)', 'Founded'],
    ['Aldport', '120,400', '88', '1612'],
    ['Brimley', '54,900', '31', '1790'],
    ['Corwick', '310,250', '142', '1458'],
    ['Dunmere', '8,730', '12', '1871'],
  ];
  const widths = [120, 120, 120, 96];
  const x0 = 12;
  const y0 = 20;
  const rowHeight = 44;
  rows.forEach((row, r) => {
    let x = x0;
    g.fillStyle = r === 0 ? '#1b65b5' : r % 2 === 0 ? '#eef3fa' : '#ffffff';
    g.fillRect(x0, y0 + r * rowHeight, widths.reduce((a, b) => a + b, 0), rowHeight);
    row.forEach((cell, c) => {
      g.fillStyle = r === 0 ? '#ffffff' : '#1d1d1f';
      g.font = `${r === 0 ? 'bold ' : ''}16px ${sans}`;
      g.fillText(cell, x + 10, y0 + r * rowHeight + 28);
      x += widths[c];
    });
  });
  g.strokeStyle = '#9aa0a6';
  g.strokeRect(x0, y0, widths.reduce((a, b) => a + b, 0), rows.length * rowHeight);
  return write('table.png', canvas, 'A table: four cities with population, area and year founded');
}

mkdirSync(outDir, { recursive: true });
const samples = [{ file: 'shapes.png', description: 'Coloured shapes and the word SHAPES' }, barChart(), textPage(), table()];
writeFileSync(join(outDir, 'samples.json'), `${JSON.stringify(samples, null, 2)}\n`);
process.stdout.write(`Wrote ${join(outDir, 'samples.json')} (${samples.length} samples)\n`);
