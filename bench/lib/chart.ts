/*
 * The comparison chart of an e2e run (bench/results/e2e-<stamp>.svg, beside the JSON): one
 * panel per row of the table, a horizontal bar per peer, scaled to the largest value of the
 * row and labelled with its value; rows where lower is better say so. A peer without a value
 * shows why (n/a, failed, setup failed), never an empty space. Plain SVG, no dependencies.
 */

export interface ChartSide {
  status: string;
  value: number | null;
}

export interface ChartRow {
  title: string;
  unit: string;
  better: 'higher' | 'lower';
  decimals: number;
  /** One per peer, in column order. */
  sides: ChartSide[];
}

const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1'];
const WIDTH = 760;
const LABEL_W = 190;
const BAR_H = 16;
const GAP = 4;
const PANEL_PAD = 28;

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function renderChart(title: string, peers: string[], rows: ChartRow[]): string {
  const panelH = PANEL_PAD + peers.length * (BAR_H + GAP) + 10;
  const height = 40 + rows.length * panelH;
  const barMax = WIDTH - LABEL_W - 110;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="24" font-size="15" font-weight="bold">${esc(title)}</text>`,
  ];
  rows.forEach((row, i) => {
    const y0 = 40 + i * panelH;
    const max = Math.max(0, ...row.sides.map((s) => (s.status === 'ok' && s.value !== null ? s.value : 0)));
    out.push(`<text x="10" y="${y0 + 16}" font-weight="bold">${esc(row.title)} (${esc(row.unit)}${row.better === 'lower' ? ', lower is better' : ''})</text>`);
    row.sides.forEach((side, j) => {
      const y = y0 + PANEL_PAD + j * (BAR_H + GAP);
      out.push(`<text x="${LABEL_W - 6}" y="${y + BAR_H - 4}" text-anchor="end">${esc(peers[j])}</text>`);
      if (side.status !== 'ok' || side.value === null) {
        out.push(`<text x="${LABEL_W}" y="${y + BAR_H - 4}" fill="#888">${esc(side.status === 'not applicable' ? 'n/a' : side.status)}</text>`);
        return;
      }
      const w = max > 0 ? Math.max(1, Math.round((side.value / max) * barMax)) : 1;
      out.push(`<rect x="${LABEL_W}" y="${y}" width="${w}" height="${BAR_H}" fill="${COLORS[j % COLORS.length]}"/>`);
      out.push(`<text x="${LABEL_W + w + 6}" y="${y + BAR_H - 4}">${side.value.toFixed(row.decimals)}</text>`);
    });
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
