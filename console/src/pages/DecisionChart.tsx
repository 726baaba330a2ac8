/**
 * The chart of decisions over time: per time bucket, allowed events stacked
 * above the axis and denied ones below it, one colour per source.
 *
 * Its own chunk, loaded only when the audit page shows a timeline: ECharts is
 * assembled from `echarts/core` with just the bar chart, the components used
 * and the canvas renderer. Canvas, not SVG: the SVG renderer writes `style`
 * attributes, which the console's CSP (no 'unsafe-inline' styles) refuses;
 * the canvas renderer only sets styles through the CSSOM, which CSP allows.
 * The canvas is one image to a screen reader, so the same numbers are also a
 * table (src/pages/Audit.tsx).
 */
import type { ReactNode } from 'react';
import { use } from 'echarts/core';
import { BarChart } from 'echarts/charts';
import { AriaComponent, GridComponent, LegendComponent, TooltipComponent } from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';
import { bucketStarts, seriesOf, type TimelineBucket, type TimelineWindow } from './timeline-data.js';
import { useChart } from './use-chart.js';

use([BarChart, GridComponent, LegendComponent, TooltipComponent, AriaComponent, CanvasRenderer]);

/** Colours with at least 3:1 contrast on white, one per source, fixed so a source keeps its colour. */
const COLOURS = ['#0b4f8a', '#b35c00', '#1f7a3a', '#6f2da8', '#a31515', '#545d66', '#00707a', '#8a6d00'];

export default function DecisionChart({ buckets, window: w, label }: { buckets: readonly TimelineBucket[]; window: TimelineWindow; label: string }): ReactNode {
  const host = useChart(() => {
    const { times, sources } = seriesOf(buckets, bucketStarts(w));
    return {
      animation: false,
      aria: { enabled: true, label: { description: label } },
      color: COLOURS,
      grid: { left: 48, right: 16, top: 36, bottom: 28 },
      legend: { top: 0, data: sources.map((s) => s.name) },
      tooltip: { trigger: 'axis', valueFormatter: (v: unknown) => String(Math.abs(Number(v))) },
      xAxis: { type: 'category', data: times.map(shortTime) },
      yAxis: { type: 'value', name: 'denied ↓  allowed ↑', axisLabel: { formatter: (v: number) => String(Math.abs(v)) } },
      series: sources.flatMap((s, i) => [
        // One stack: ECharts stacks positive and negative values apart, so a bucket's denials hang right under its allows.
        { name: s.name, type: 'bar', stack: 'decisions', data: s.allowed.map((n) => (n === 0 ? null : n)), itemStyle: { color: COLOURS[i % COLOURS.length] } },
        // Denied below the axis, the same colour paler with a red edge: a refusal reads at a glance.
        { name: s.name, type: 'bar', stack: 'decisions', data: s.denied.map((n) => (n === 0 ? null : -n)), itemStyle: { color: COLOURS[i % COLOURS.length], opacity: 0.55, borderColor: '#a31515', borderWidth: 1 } },
      ]),
    };
  }, [buckets, w, label]);
  return <div className="chart" ref={host} data-testid="decision-chart" />;
}

function shortTime(iso: string): string {
  const d = new Date(iso);
  return `${d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })} ${d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })}`;
}
