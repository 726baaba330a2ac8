/**
 * One bar or line visual of a dashboard. Its own chunk with the audit chart's
 * ECharts build (core, canvas renderer: the console's CSP refuses the SVG
 * renderer's inline styles). The numbers are also in the visual's table below
 * it for screen readers (Dashboards.tsx).
 */
import type { ReactNode } from 'react';
import { use } from 'echarts/core';
import { BarChart, LineChart } from 'echarts/charts';
import { AriaComponent, GridComponent, TooltipComponent } from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';
import { useChart } from './use-chart.js';

use([BarChart, LineChart, GridComponent, TooltipComponent, AriaComponent, CanvasRenderer]);

export default function DashboardChart({ type, series, label }: { type: 'bar' | 'line'; series: readonly [string, number][]; label: string }): ReactNode {
  const host = useChart(
    () => ({
      animation: false,
      aria: { enabled: true, label: { description: label } },
      color: ['#0b4f8a'],
      tooltip: { trigger: 'axis' },
      grid: { left: 80, right: 16, top: 16, bottom: 40 },
      xAxis: { type: 'category', data: series.map((s) => s[0]) },
      yAxis: { type: 'value' },
      series: [{ type, data: series.map((s) => Math.round(s[1] * 100) / 100) }],
    }),
    [type, series, label],
  );
  return <div className="chart" ref={host} data-testid="dashboard-chart" />;
}
