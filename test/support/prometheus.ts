export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text format, strictly: a line that is none of HELP, TYPE or a sample fails the test. */
export function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("# HELP ")) continue;
    const type = line.match(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    const sample = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+-]+|nan|[+-]?inf)$/i); // values as Go's ParseFloat reads them (prom-client prints "Nan")
    if (!sample) throw new Error(`not a Prometheus line: ${line}`);
    const labels = Object.fromEntries([...(sample[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
    samples.push({ name: sample[1]!, labels, value: Number(sample[3]) });
  }
  return { samples, types };
}

/** One sidecar's /metrics, parsed. */
export async function scrape(httpPort: number): Promise<{ samples: Sample[]; types: Map<string, string> }> {
  return parseExposition(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text());
}

/** The value of an unlabelled series, or undefined when the scrape has none. */
export function valueOf(scraped: { samples: Sample[] }, name: string): number | undefined {
  return scraped.samples.find((s) => s.name === name && Object.keys(s.labels).length === 0)?.value;
}
