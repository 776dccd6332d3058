package bench

import "time"

// Workloads returns every workload, in the order a run measures them.
//
// This list is the extension point: a new capability's headline figure is
// one more entry (see the package documentation). For a Go benchmark, add
// a GoBench{...}.Workload(...) entry naming the package, the pattern, the
// metrics to keep and their goals; for a process, a Workload with its own
// Run function in a file of this package. Keep each entry's quick bound
// small: the quick mode of the whole list should take about five minutes.
//
// Capabilities being built now, to add here when their benchmarks land:
// search (a query's latency on a 1,000,000-object store, cold and warm).
func Workloads() []Workload {
	return []Workload{
		{Name: "taxii", About: "TAXII 2.1 POST of 10,000 indicators, paged reads, latency (taxii-load, fresh node)",
			Quick: 3 * time.Minute, Full: 10 * time.Minute, Run: taxiiWorkload},
		{Name: "ingest", About: "ATT&CK Enterprise ingest into a fresh node (entente ingest --data, whole process)",
			Quick: 2 * time.Minute, Full: 5 * time.Minute, Run: ingestWorkload},
		GoBench{
			Pkg: "./internal/store/sqlite", Pattern: "BenchmarkAddATTACK$",
			QuickBenchtime: "3x", FullBenchtime: "5x", QuickCount: 1, FullCount: 3,
			Metrics: []BenchMetric{
				{Bench: "BenchmarkAddATTACK", Unit: "ns/op", Figure: "ingest.parts.store", FigureUnit: "s", Scale: 1e-9, Better: Lower,
					Note: "AddObjects of the 24,772 ATT&CK objects into a fresh SQLite store (the ingest's storage alone)"},
			},
		}.Workload("ingest-store", "the ATT&CK ingest's storage alone (BenchmarkAddATTACK, SQLite)", 3*time.Minute, 6*time.Minute, true),
		GoBench{
			Pkg: "./internal/stix", Pattern: "BenchmarkIngestATTACK$",
			QuickBenchtime: "5x", FullBenchtime: "10x", QuickCount: 1, FullCount: 3,
			Metrics: []BenchMetric{
				{Bench: "BenchmarkIngestATTACK", Unit: "ns/op", Figure: "ingest.parts.decode-validate", FigureUnit: "s", Scale: 1e-9, Better: Lower,
					Note: "reading, decoding and validating the ATT&CK bundle on every core (the ingest's share of internal/stix)"},
				{Bench: "BenchmarkIngestATTACK", Unit: "cpu-ms/op", Figure: "ingest.parts.decode-validate-cpu", FigureUnit: "CPU-s", Scale: 1e-3, Better: Lower},
			},
		}.Workload("ingest-decode", "the ATT&CK ingest's decoding and validation alone (BenchmarkIngestATTACK)", 3*time.Minute, 6*time.Minute, true),
		{Name: "import", About: "importing every shared blocklist and MISP event into a fresh node (entente import --data, whole process)",
			Quick: 3 * time.Minute, Full: 6 * time.Minute, Run: importWorkload},
		{Name: "match", About: "matching Zeek conn.log and Suricata EVE (tools/matchgen) beside grep and a Python set",
			Bound: matchBudget, Run: matchWorkload},
		{Name: "devices", About: "the device watch beside the log matcher on one generated day of conn.log (tools/devicegen; full: 10,000 devices, ~50M lines)",
			Bound: devicesBudget, Run: devicesWorkload},
		GoBench{
			Pkg: "./internal/devices", Pattern: "BenchmarkMemory100k$|BenchmarkWatcherFlow$",
			QuickBenchtime: "1x", FullBenchtime: "3x", QuickCount: 1, FullCount: 1,
			Timeout: 20 * time.Minute,
			Metrics: []BenchMetric{
				{Bench: "BenchmarkMemory100k", Unit: "heap-bytes/pair", Figure: "devices.memory100k.per-pair", FigureUnit: "bytes", Better: Lower, Goal: Below(1024),
					Note: "100,000 devices, each with more destinations than its top-K: profiles' heap per device–destination pair"},
				{Bench: "BenchmarkMemory100k", Unit: "heap-MiB", Figure: "devices.memory100k.heap", FigureUnit: "MiB", Better: Lower,
					Note: "bounded by max_devices × top_destinations"},
				{Bench: "BenchmarkWatcherFlow", Unit: "ns/flow", Figure: "devices.profile.flow", FigureUnit: "ns/connection", Better: Lower,
					Note: "profiling and detection alone (no parsing), one goroutine"},
			},
		}.Workload("devices-memory", "device profiles of 100,000 devices (memory bound) and profiling alone (internal/devices)", 4*time.Minute, 10*time.Minute, false),
		GoBench{
			Pkg: "./internal/export", Pattern: "Export(Nftables|RPZ|IPSet)1M$",
			QuickBenchtime: "3x", FullBenchtime: "5x", QuickCount: 1, FullCount: 3,
			Metrics: []BenchMetric{
				{Bench: "BenchmarkExportNftables1M", Unit: "ns/op", Figure: "export.render.nftables-1m", FigureUnit: "s", Scale: 1e-9, Better: Lower, Goal: Below(2)},
				{Bench: "BenchmarkExportRPZ1M", Unit: "ns/op", Figure: "export.render.rpz-1m", FigureUnit: "s", Scale: 1e-9, Better: Lower, Goal: Below(2)},
				{Bench: "BenchmarkExportIPSet1M", Unit: "ns/op", Figure: "export.render.ipset-1m", FigureUnit: "s", Scale: 1e-9, Better: Lower, Goal: Below(2)},
			},
		}.Workload("export", "rendering 1,000,000 IPs as nftables, RPZ and ipset (export package)", 3*time.Minute, 10*time.Minute, false),
		GoBench{
			Pkg: "./internal/node", Pattern: "BenchmarkNodeExport1M$",
			QuickBenchtime: "1x", FullBenchtime: "3x", QuickCount: 1, FullCount: 1,
			Timeout: 20 * time.Minute,
			Metrics: []BenchMetric{
				{Bench: "BenchmarkNodeExport1M/nftables", Unit: "ns/op", Figure: "export.node.nftables-1m", FigureUnit: "s", Scale: 1e-9, Better: Lower, Goal: Below(2),
					Note: "through the node, export index up to date"},
				{Bench: "BenchmarkNodeExport1M/rpz", Unit: "ns/op", Figure: "export.node.rpz-1m", FigureUnit: "s", Scale: 1e-9, Better: Lower, Goal: Below(2)},
				{Bench: "BenchmarkNodeExport1M/first", Unit: "ns/op", Figure: "export.node.first-1m", FigureUnit: "s", Scale: 1e-9, Better: Lower,
					Note: "first export: builds the export index"},
			},
		}.Workload("export-node", "exports of 1,000,000 stored IPv4 indicators through the node (stores them first)", 8*time.Minute, 20*time.Minute, true),
		GoBench{
			Pkg: "./internal/httpapi", Pattern: "BenchmarkTAXIIRead10k$",
			QuickBenchtime: "20x", FullBenchtime: "20x", QuickCount: 2, FullCount: 6,
			Metrics: []BenchMetric{
				{Bench: "BenchmarkTAXIIRead10k/gc=400", Unit: "gate-%", Figure: "gate.read10k.cost", FigureUnit: "%", Better: Lower, Goal: Below(10),
					Note: "a partner's gated, audited read of 10,000 objects over an analyst's ungated one, alternating; GOGC as serve sets it"},
				{Bench: "BenchmarkTAXIIRead10k/gc=400", Unit: "gated-ms", Figure: "gate.read10k.gated", FigureUnit: "ms", Better: Lower,
					Peer: &BenchPeer{Name: "ungated read", Bench: "BenchmarkTAXIIRead10k/gc=400", Unit: "ungated-ms"}},
				{Bench: "BenchmarkTAXIIRead10k/gc=100", Unit: "gate-%", Figure: "gate.read10k.cost-gogc100", FigureUnit: "%", Better: Lower},
			},
		}.Workload("gate", "the policy gate's cost on a 10,000-object TAXII read (BenchmarkTAXIIRead10k)", 3*time.Minute, 10*time.Minute, false),
		GoBench{
			Pkg: "./internal/node", Pattern: "BenchmarkPeerPull$",
			QuickBenchtime: "1x", FullBenchtime: "1x", QuickCount: 1, FullCount: 1,
			QuickEnv: []string{"ENTENTE_BENCH_PULL=100000"}, FullEnv: []string{"ENTENTE_BENCH_PULL=1000000"},
			Timeout: 20 * time.Minute,
			Metrics: []BenchMetric{
				{Bench: "BenchmarkPeerPull", Unit: "objects/s", Figure: "pull.rate", FigureUnit: "objects/s", Better: Higher, Goal: AtLeast(1_000_000.0 / 60),
					Note:     "node to node over loopback TAXII: gate, audit, client, storage with provenance (quick: 100,000 objects; full: 1,000,000); goal: 1,000,000 in < 60 s",
					Recorded: &Peer{Name: "OpenCTI", Value: 800_000.0 / 86_400, Recorded: true, Source: "BASELINES.md, from OpenCTI users' reports (not measured): over 24 h for an 800,000-object TAXII import"}},
			},
			FullMetrics: []BenchMetric{
				{Bench: "BenchmarkPeerPull", Unit: "ns/op", Figure: "pull.1m", FigureUnit: "s", Scale: 1e-9, Better: Lower, Goal: Below(60)},
			},
		}.Workload("pull", "a node-to-node pull over TAXII (BenchmarkPeerPull; 1,000,000 objects in full mode)", 5*time.Minute, 20*time.Minute, false),
		GoBench{
			Pkg: "./internal/stix/pattern", Pattern: "BenchmarkParse$",
			QuickBenchtime: "20x", FullBenchtime: "100x", QuickCount: 1, FullCount: 5,
			Metrics: []BenchMetric{
				{Bench: "BenchmarkParse", Unit: "patterns/s", Figure: "pattern.parse", FigureUnit: "patterns/s", Better: Higher,
					Note:     "every valid STIX pattern of the shared corpus, one core",
					Recorded: &Peer{Name: "ANTLR parser", Value: 41000, Recorded: true, Source: "../shared/notes/dependencies.md: the ANTLR-generated parser, 41k patterns/s on this kind of machine"}},
			},
		}.Workload("pattern", "parsing STIX patterns (internal/stix/pattern)", 2*time.Minute, 5*time.Minute, false),
		GoBench{
			Pkg: "./internal/correlate", Pattern: "BenchmarkAdd$",
			QuickBenchtime: "1x", FullBenchtime: "3x", QuickCount: 1, FullCount: 3,
			Metrics: []BenchMetric{
				{Bench: "BenchmarkAdd", Unit: "sightings/s", Figure: "correlate.rate", FigureUnit: "sightings/min", Scale: 60, Better: Higher, Goal: AtLeast(1_000_000),
					Note: "sustained correlation, one simulated minute of a million sightings per iteration"},
				{Bench: "BenchmarkAdd", Unit: "heap-MiB-last", Figure: "correlate.heap", FigureUnit: "MiB", Better: Lower},
			},
		}.Workload("correlate", "correlating sightings into coordinated alerts (internal/correlate)", 4*time.Minute, 10*time.Minute, true),
		GoBench{
			Pkg: "./internal/store/sqlite", Pattern: "BenchmarkPage1M$",
			QuickBenchtime: "2000x", FullBenchtime: "2000x", QuickCount: 1, FullCount: 3,
			Timeout: 20 * time.Minute,
			Metrics: []BenchMetric{
				{Bench: "BenchmarkPage1M/page=1", Unit: "p99-ms", Figure: "page1m.first.p99", FigureUnit: "ms", Better: Lower, Goal: Below(20)},
				{Bench: "BenchmarkPage1M/page=9000", Unit: "p99-ms", Figure: "page1m.deep.p99", FigureUnit: "ms", Better: Lower, Goal: Below(20),
					Note: "page 9,000 of a 1,000,000-object collection (limit 100), reached by cursor; goal: within 2× of page 1 and p99 < 20 ms"},
				{Bench: "BenchmarkPage1M/page=9000", Unit: "ns/op", Figure: "page1m.deep", FigureUnit: "ms", Scale: 1e-6, Better: Lower,
					Peer: &BenchPeer{Name: "page 1", Bench: "BenchmarkPage1M/page=1", Unit: "ns/op", Scale: 1e-6}},
			},
		}.Workload("page1m", "paging a 1,000,000-object SQLite collection: page 1 against page 9,000", 10*time.Minute, 25*time.Minute, true),
		GoBench{
			Pkg: "./internal/dashboard", Pattern: "BenchmarkFirstScreen$|BenchmarkAlertToMap$|BenchmarkSearchAndObject$",
			QuickBenchtime: "5x", FullBenchtime: "20x", QuickCount: 1, FullCount: 2,
			QuickEnv: []string{"ENTENTE_BENCH_DIR={work}/dashboard-1M"}, FullEnv: []string{"ENTENTE_BENCH_DIR={work}/dashboard-1M"},
			Timeout: 30 * time.Minute,
			Metrics: []BenchMetric{
				{Bench: "BenchmarkFirstScreen", Unit: "ns/op", Figure: "dashboard.first-screen", FigureUnit: "s", Scale: 1e-9, Better: Lower, Goal: Below(1),
					Note: "every request of the first screen over HTTP, store of 1,000,000 objects and 10,000 alerts (built once into the work directory)"},
				{Bench: "BenchmarkAlertToMap", Unit: "ms-to-map", Figure: "dashboard.alert-to-map", FigureUnit: "ms", Better: Lower, Goal: Below(1000)},
				{Bench: "BenchmarkSearchAndObject", Unit: "ns/op", Figure: "dashboard.search-and-object", FigureUnit: "ms", Scale: 1e-6, Better: Lower},
			},
		}.Workload("dashboard", "the analysts' dashboard on a 1,000,000-object store (first screen, alert to map, search)", 15*time.Minute, 30*time.Minute, true),
		GoBench{
			Pkg: "./internal/drill", Pattern: "BenchmarkDrill$",
			QuickBenchtime: "1x", FullBenchtime: "1x", QuickCount: 1, FullCount: 1,
			Timeout: 20 * time.Minute,
			Metrics: []BenchMetric{
				{Bench: "BenchmarkDrill", Unit: "global-p99-ms", Figure: "drill259.global.p99", FigureUnit: "ms", Better: Lower, Goal: AtMost(2000),
					Note: "259 organisations in 78 countries, the outbreak replayed in 5 minutes, in one process"},
				{Bench: "BenchmarkDrill", Unit: "regional-p99-ms", Figure: "drill259.regional.p99", FigureUnit: "ms", Better: Lower},
				{Bench: "BenchmarkDrill", Unit: "national-p99-ms", Figure: "drill259.national.p99", FigureUnit: "ms", Better: Lower},
				{Bench: "BenchmarkDrill", Unit: "violations", Figure: "drill259.policy-violations", FigureUnit: "violations", Better: Lower, Goal: AtMost(0)},
			},
		}.Workload("drill259", "the full drill: 259 nodes, 78 countries, 5-minute replay (BenchmarkDrill)", 15*time.Minute, 20*time.Minute, true),
		GoBench{
			Pkg: "./internal/blind", Pattern: "BenchmarkEvaluate$|BenchmarkBuild$|BenchmarkUpdate$",
			QuickBenchtime: "1x", FullBenchtime: "1x", QuickCount: 1, FullCount: 3,
			QuickEnv: []string{"ENTENTE_BLIND_BENCH_INDICATORS=100000"}, FullEnv: []string{"ENTENTE_BLIND_BENCH_INDICATORS=1000000"},
			Timeout: 30 * time.Minute,
			Metrics: []BenchMetric{
				{Bench: "BenchmarkEvaluate", Unit: "evals/s", Figure: "blind.evaluate", FigureUnit: "evaluations/s", Better: Higher, Goal: AtLeast(20000),
					Note: "the node's batched evaluation of blinded elements, one goroutine (checks, budget, replay guard, constant-time multiplication)"},
				{Bench: "BenchmarkBuild", Unit: "indicators/s", Figure: "blind.build.rate", FigureUnit: "indicators/s", Better: Higher, Goal: AtLeast(1_000_000.0 / 30),
					Note: "a partner's blinded set on every core (quick: 100,000 indicators; full: 1,000,000); goal: 1,000,000 in < 30 s on two cores"},
				{Bench: "BenchmarkBuild", Unit: "set-MiB", Figure: "blind.set.size", FigureUnit: "MiB", Better: Lower},
				{Bench: "BenchmarkUpdate", Unit: "ns/op", Figure: "blind.update", FigureUnit: "ms", Scale: 1e-6, Better: Lower,
					Note: "1,000 indicators added and 1,000 removed, the set re-encoded"},
			},
			FullMetrics: []BenchMetric{
				{Bench: "BenchmarkBuild", Unit: "ns/op", Figure: "blind.build.1m", FigureUnit: "s", Scale: 1e-9, Better: Lower, Goal: Below(30)},
				{Bench: "BenchmarkBuild", Unit: "set-MiB", Figure: "blind.set.1m", FigureUnit: "MiB", Better: Lower, Goal: Below(32)},
			},
		}.Workload("blind-set", "blind access, the node's side: evaluations, building and updating a partner's set", 5*time.Minute, 15*time.Minute, false),
		GoBench{
			Pkg: "./internal/blindaccess", Pattern: "BenchmarkRenderSet$",
			QuickBenchtime: "1x", FullBenchtime: "1x", QuickCount: 1, FullCount: 1,
			QuickEnv: []string{"ENTENTE_BLIND_BENCH_INDICATORS=100000"}, FullEnv: []string{"ENTENTE_BLIND_BENCH_INDICATORS=1000000"},
			Timeout: 30 * time.Minute,
			Metrics: []BenchMetric{
				{Bench: "BenchmarkRenderSet/full", Unit: "indicators/s", Figure: "blind.render.rate", FigureUnit: "indicators/s", Better: Higher,
					Note: "a partner's set rendered through the node's gate from stored indicators (read, decided, parsed, evaluated, encoded)"},
				{Bench: "BenchmarkRenderSet/incremental", Unit: "ns/op", Figure: "blind.render.incremental", FigureUnit: "ms", Scale: 1e-6, Better: Lower,
					Note: "the same set brought up to date after 100 indicators were stored"},
			},
		}.Workload("blind-render", "blind access through the node: a partner's set rendered from the store, then kept up to date", 8*time.Minute, 20*time.Minute, true),
		GoBench{
			Pkg: "./internal/blind/blindhttp", Pattern: "BenchmarkTranslateLoopback$",
			QuickBenchtime: "1x", FullBenchtime: "1x", QuickCount: 1, FullCount: 3,
			QuickEnv: []string{"ENTENTE_BLIND_BENCH_VALUES=100000"}, FullEnv: []string{"ENTENTE_BLIND_BENCH_VALUES=1000000"},
			Timeout: 30 * time.Minute,
			Metrics: []BenchMetric{
				{Bench: "BenchmarkTranslateLoopback", Unit: "values/s", Figure: "blind.translate.rate", FigureUnit: "values/s", Better: Higher, Goal: AtLeast(1_000_000.0 / 60),
					Note: "distinct values translated through the HTTP handler on 127.0.0.1, partner and node in one process sharing the cores; goal: 1,000,000 in < 60 s"},
			},
			FullMetrics: []BenchMetric{
				{Bench: "BenchmarkTranslateLoopback", Unit: "ns/op", Figure: "blind.translate.1m", FigureUnit: "s", Scale: 1e-9, Better: Lower, Goal: Below(60)},
			},
		}.Workload("blind-translate", "blind access, the partner's side: translating distinct values over loopback", 5*time.Minute, 15*time.Minute, false),
		GoBench{
			Pkg: "./internal/blind", Pattern: "BenchmarkMatchTranslated$",
			QuickBenchtime: "1x", FullBenchtime: "3x", QuickCount: 1, FullCount: 1,
			QuickEnv: []string{"ENTENTE_BLIND_BENCH_LINES=1000000"}, FullEnv: []string{"ENTENTE_BLIND_BENCH_LINES=10000000"},
			Timeout: 30 * time.Minute,
			Metrics: []BenchMetric{
				{Bench: "BenchmarkMatchTranslated/blind", Unit: "lines/s", Figure: "blind.match.rate", FigureUnit: "lines/s", Better: Higher,
					Note: "a conn.log (quick: 1,000,000 lines; full: 10,000,000) against 1,000,000 indicators' blinded set, once translated",
					Peer: &BenchPeer{Name: "plain snapshot", Bench: "BenchmarkMatchTranslated/plain", Unit: "lines/s"}},
				{Bench: "BenchmarkMatchTranslated/ratio", Unit: "blind-%-of-plain", Figure: "blind.match.ratio", FigureUnit: "%", Better: Higher, Goal: AtLeast(50)},
				{Bench: "BenchmarkMatchTranslated/collect", Unit: "lines/s", Figure: "blind.collect.rate", FigureUnit: "lines/s", Better: Higher,
					Note: "the pass that finds a log's distinct values to translate"},
			},
		}.Workload("blind-match", "blind access: matching a conn.log against a blinded set once translated, beside plain matching", 6*time.Minute, 20*time.Minute, true),
		{Name: "drill", About: "a small coordinated-alert drill (entente drill: real nodes on loopback, alert propagation per tier)",
			Quick: 4 * time.Minute, Full: 8 * time.Minute, Run: drillWorkload},
		{Name: "wal", About: "the SQLite WAL under a sustained mixed load (posts and reads, 16 clients)",
			Bound: walBudget, Run: walWorkload},
	}
}
