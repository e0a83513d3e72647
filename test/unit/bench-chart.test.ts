// The e2e benchmark's SVG chart (bench/lib/chart.ts): one panel per row, a bar per measured
// peer scaled to the row's largest value, a reason instead of a bar for the others, text
// escaped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderChart } from '../../bench/lib/chart.js';

test('bench chart: bars scale to the row maximum; missing peers say why; text is escaped', () => {
  const svg = renderChart('run <1> & "x"', ['kernel', 'tapbridge', 'slirp4netns'], [
    { title: 'nat: TCP', unit: 'Gbit/s', better: 'higher', decimals: 2, sides: [{ status: 'ok', value: 10 }, { status: 'ok', value: 5 }, { status: 'setup failed', value: null }] },
    { title: 'switch: ping', unit: 'µs', better: 'lower', decimals: 1, sides: [{ status: 'ok', value: 20 }, { status: 'ok', value: 40 }, { status: 'not applicable', value: null }] },
  ]);
  assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  const widths = [...svg.matchAll(/<rect x="\d+" y="\d+" width="(\d+)"/g)].map((m) => Number(m[1]));
  assert.equal(widths.length, 4, 'one bar per measured side');
  assert.equal(widths[0], 2 * widths[1], 'bars are proportional within a row');
  assert.equal(widths[3], 2 * widths[2]);
  assert.equal(widths[0], widths[3], 'each row scales to its own maximum');
  assert.match(svg, />setup failed</);
  assert.match(svg, />n\/a</);
  assert.match(svg, /lower is better/);
  assert.match(svg, />10\.00<.*\n.*\n.*\n.*>5\.00</);
  assert.ok(svg.includes('run &lt;1&gt; &amp; &quot;x&quot;') && !svg.includes('<1>'), 'the title is escaped');
});
