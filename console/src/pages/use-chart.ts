/**
 * An ECharts chart on a div: drawn on the canvas renderer (the console's CSP
 * refuses the SVG renderer's inline styles), resized with the window, and
 * disposed when the component goes or its inputs change. The caller registers
 * the chart types and components it uses (`use([...])`) in its own chunk.
 */
import { useEffect, useRef, type RefObject } from 'react';
import { init, type EChartsCoreOption } from 'echarts/core';

export function useChart(option: () => EChartsCoreOption, deps: readonly unknown[]): RefObject<HTMLDivElement | null> {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (host.current === null) return;
    const chart = init(host.current, null, { renderer: 'canvas' });
    chart.setOption(option());
    const resize = (): void => chart.resize();
    window.addEventListener('resize', resize);
    return () => {
      window.removeEventListener('resize', resize);
      chart.dispose();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  return host;
}
