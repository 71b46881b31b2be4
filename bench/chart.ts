// The benchmark chart: effective GB/s per workload and contender, with the measured read bandwidth drawn as the
// limit. A Vega-Lite spec rendered to SVG by Vega, and to PNG by resvg.
import * as fs from 'node:fs';

// Vega's and Vega-Lite's declarations need the DOM's types, which a Node build lacks: the calls used are typed here,
// and the module names are in variables so that TypeScript does not load theirs.
interface VegaLite {
  compile(spec: unknown): { spec: unknown };
}
interface Vega {
  parse(spec: unknown): unknown;
  View: new (runtime: unknown, options: { renderer: 'none' }) => { toSVG(): Promise<string>; finalize(): void };
}
const VEGA = 'vega';
const VEGA_LITE = 'vega-lite';

export interface ChartPoint {
  workload: string;
  contender: string;
  gbPerS: number;
}

export interface ChartLimit {
  label: string;
  gbPerS: number;
}

export async function writeChart(points: ChartPoint[], limits: ChartLimit[], title: string, basePath: string): Promise<string[]> {
  const vl = (await import(VEGA_LITE)) as VegaLite;
  const vega = (await import(VEGA)) as Vega;
  const { Resvg } = await import('@resvg/resvg-js');
  const workloads = [...new Set(points.map((p) => p.workload))];
  const contenders = [...new Set(points.map((p) => p.contender))];
  // One log scale shared by the bars and the limit lines, its domain covering both.
  const values = [...points.map((p) => p.gbPerS), ...limits.map((l) => l.gbPerS)].filter((x) => x > 0 && Number.isFinite(x));
  const X_SCALE = { type: 'log', domain: [Math.min(...values) / 1.5, Math.max(...values) * 1.5] };
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: title,
      subtitle: `dashed lines: streaming read bandwidth measured in the same run, ${limits.map((l) => `${l.label} ${l.gbPerS.toFixed(1)} GB/s`).join(', ')}`,
      anchor: 'start',
    },
    width: 720,
    config: { font: 'DejaVu Sans', view: { stroke: null } },
    layer: [
      {
        data: { values: points },
        mark: { type: 'bar' },
        encoding: {
          y: { field: 'workload', type: 'nominal', sort: workloads, title: null, scale: { paddingInner: 0.25 }, axis: { labelLimit: 0 } },
          yOffset: { field: 'contender', sort: contenders },
          x: { field: 'gbPerS', type: 'quantitative', scale: X_SCALE, title: 'effective GB/s, (k+2)·|W| bytes per step (log scale)' },
          x2: { datum: X_SCALE.domain[0] }, // a log scale has no zero: bars start at the domain's low end
          color: {
            field: 'contender',
            type: 'nominal',
            sort: contenders,
            scale: { scheme: 'tableau20' },
            legend: { orient: 'bottom', columns: 3, title: null, labelLimit: 0 },
          },
        },
      },
      {
        data: { values: limits },
        mark: { type: 'rule', strokeDash: [6, 3], strokeWidth: 1.5, color: '#222' },
        encoding: { x: { field: 'gbPerS', type: 'quantitative', scale: X_SCALE } },
      },
    ],
    height: { step: 9 }, // per contender: a workload's band holds one bar for each
  };
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const png = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: 1.5 },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  })
    .render()
    .asPng();
  fs.writeFileSync(`${basePath}.svg`, svg);
  fs.writeFileSync(`${basePath}.png`, png);
  return [`${basePath}.svg`, `${basePath}.png`];
}
