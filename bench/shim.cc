// greenring benchmarks: the C API of bench.h over google-benchmark, and main().
//
// Compiled and linked with the system g++ (Debian's libbenchmark is built
// against libstdc++; see docs in /work/shared/TOOLCHAIN.md). The benchmark
// cases themselves are C (bench/bench_*.c) and register from constructors,
// which may run before this file's static objects are initialised: the
// registries are function-local statics, built on first use.
#include "bench.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <thread>
#include <cstdio>
#include <cstring>
#include <regex>
#include <string>
#include <vector>

// gr_bench_state is never defined: a gr_bench_state * is a benchmark::State *.
namespace {

benchmark::State &S(gr_bench_state *st)
{
    return *reinterpret_cast<benchmark::State *>(st);
}

struct Registration {
    std::string name;
    gr_bench_fn fn;
    gr_bench_opts opts;
};

struct AfterHook {
    std::string name;
    gr_bench_after_fn fn;
};

std::vector<Registration> &registrations()
{
    static std::vector<Registration> r;
    return r;
}

std::vector<AfterHook> &after_hooks()
{
    static std::vector<AfterHook> h;
    return h;
}

benchmark::TimeUnit to_unit(enum gr_bench_unit u)
{
    switch (u) {
    case GR_BENCH_US:
        return benchmark::kMicrosecond;
    case GR_BENCH_MS:
        return benchmark::kMillisecond;
    case GR_BENCH_S:
        return benchmark::kSecond;
    case GR_BENCH_NS:
    default:
        return benchmark::kNanosecond;
    }
}

// Watchdog: a benchmark function (or report hook) that runs longer than
// GR_BENCH_TIMEOUT seconds (default 120) is reported by name and the process
// aborts, so a hang in the runtime ends the suite with a core instead of
// blocking it forever.
std::atomic<const char *> watch_name{nullptr};
std::atomic<std::int64_t> watch_since{0};

std::int64_t mono_ms()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

struct Watch {
    explicit Watch(const char *name)
    {
        watch_since.store(mono_ms());
        watch_name.store(name);
    }
    ~Watch() { watch_name.store(nullptr); }
};

void start_watchdog()
{
    long limit = 120;
    if (const char *e = std::getenv("GR_BENCH_TIMEOUT"))
        limit = std::strtol(e, nullptr, 10);
    if (limit <= 0)
        return;
    std::thread([limit] {
        for (;;) {
            std::this_thread::sleep_for(std::chrono::milliseconds(250));
            const char *name = watch_name.load();
            if (name && mono_ms() - watch_since.load() > limit * 1000) {
                std::fprintf(stderr,
                             "greenring-bench: %s has run for more than %ld s (GR_BENCH_TIMEOUT): "
                             "hung? aborting\n",
                             name, limit);
                std::abort();
            }
        }
    }).detach();
}

// Widest name as printed (without the suffixes NameTrimmer drops).
std::size_t name_width = 10;

// google-benchmark appends "/min_time:0.300/process_time/real_time" to every
// name; the suite's names are the registered ones (plus arguments), so the
// display reporter (whatever --benchmark_format picked) gets the runs with
// those parts removed. Filters still see the full names.
class NameTrimmer : public benchmark::BenchmarkReporter {
  public:
    explicit NameTrimmer(benchmark::BenchmarkReporter *inner) : inner_(inner) {}
    ~NameTrimmer() override { delete inner_; }

    bool ReportContext(const Context &context) override
    {
        Context c = context;
        c.name_field_width = name_width;
        return inner_->ReportContext(c);
    }
    void ReportRuns(const std::vector<Run> &reports) override
    {
        std::vector<Run> runs = reports;
        for (Run &r : runs) {
            r.run_name.min_time.clear();
            r.run_name.time_type.clear();
        }
        inner_->ReportRuns(runs);
    }
    void Finalize() override { inner_->Finalize(); }

  private:
    benchmark::BenchmarkReporter *inner_;
};

void register_all()
{
    for (const Registration &r : registrations()) {
        gr_bench_fn fn = r.fn;
        const char *watch_as = r.name.c_str(); // registrations() lives until exit
        std::size_t w = r.name.size();
        std::size_t widest_arg = 0;
        for (int i = 0; i < r.opts.nargs && i < GR_BENCH_MAX_ARGS; i++)
            widest_arg = std::max(widest_arg, 1 + std::to_string(r.opts.args[i]).size());
        name_width = std::max(name_width, w + widest_arg + 12); // + " (aggregate)" room
        benchmark::internal::Benchmark *b = benchmark::RegisterBenchmark(
            r.name.c_str(),
            [fn, watch_as](benchmark::State &st) {
                Watch w(watch_as);
                fn(reinterpret_cast<gr_bench_state *>(&st));
            });
        const gr_bench_opts &o = r.opts;
        b->Unit(to_unit(o.unit));
        // The work runs on worker threads: wall-clock time is the measure,
        // and the CPU column is the whole process's CPU time.
        b->MeasureProcessCPUTime();
        if (o.manual_time)
            b->UseManualTime();
        else
            b->UseRealTime();
        if (o.iterations > 0)
            b->Iterations(o.iterations);
        else
            b->MinTime(o.min_time > 0 ? o.min_time : 0.3);
        if (o.repetitions > 0)
            b->Repetitions(o.repetitions);
        for (int i = 0; i < o.nargs && i < GR_BENCH_MAX_ARGS; i++)
            b->Arg(o.args[i]);
    }
}

// Does `name` pass --benchmark_filter (google-benchmark's syntax: a regex,
// "-regex" to negate, empty or "all" for everything)?
bool filter_matches(const std::string &name)
{
    std::string f = benchmark::GetBenchmarkFilter();
    if (f.empty() || f == "all" || f == ".")
        return true;
    bool negate = false;
    if (f[0] == '-') {
        negate = true;
        f.erase(0, 1);
    }
    bool m;
    try {
        m = std::regex_search(name, std::regex(f, std::regex::extended));
    } catch (const std::regex_error &) {
        m = false;
    }
    return m != negate;
}

bool listing_only(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (std::strcmp(a, "--benchmark_list_tests") == 0 ||
            std::strcmp(a, "--benchmark_list_tests=true") == 0 ||
            std::strcmp(a, "--benchmark_list_tests=1") == 0)
            return true;
    }
    return false;
}

} // namespace

extern "C" {

void gr_bench_register(const char *name, gr_bench_fn fn, const gr_bench_opts *opts)
{
    Registration r{name, fn, gr_bench_opts{}};
    if (opts)
        r.opts = *opts;
    registrations().push_back(r);
}

void gr_bench_after_all(const char *name, gr_bench_after_fn fn)
{
    after_hooks().push_back(AfterHook{name, fn});
}

int gr_bench_keep_running(gr_bench_state *st)
{
    return S(st).KeepRunning() ? 1 : 0;
}

int gr_bench_keep_running_batch(gr_bench_state *st, int64_t n)
{
    return S(st).KeepRunningBatch(static_cast<benchmark::IterationCount>(n)) ? 1 : 0;
}

int64_t gr_bench_max_iterations(gr_bench_state *st)
{
    return static_cast<int64_t>(S(st).max_iterations);
}

int64_t gr_bench_iterations(gr_bench_state *st)
{
    return static_cast<int64_t>(S(st).iterations());
}

int64_t gr_bench_range(gr_bench_state *st, int i)
{
    return S(st).range(static_cast<std::size_t>(i));
}

void gr_bench_pause(gr_bench_state *st)
{
    S(st).PauseTiming();
}

void gr_bench_resume(gr_bench_state *st)
{
    S(st).ResumeTiming();
}

void gr_bench_set_items(gr_bench_state *st, int64_t items)
{
    S(st).SetItemsProcessed(items);
}

void gr_bench_counter(gr_bench_state *st, const char *name, double value)
{
    S(st).counters[name] = benchmark::Counter(value);
}

void gr_bench_set_iteration_time(gr_bench_state *st, double seconds)
{
    S(st).SetIterationTime(seconds);
}

void gr_bench_label(gr_bench_state *st, const char *label)
{
    S(st).SetLabel(label);
}

void gr_bench_error(gr_bench_state *st, const char *why)
{
    S(st).SkipWithError(why);
}

void gr_bench_skip(gr_bench_state *st, const char *why)
{
    // google-benchmark 1.7 has no SkipWithMessage; the reason says "skipped".
    std::string msg = std::string("skipped: ") + why;
    S(st).SkipWithError(msg.c_str());
}

} // extern "C"

int main(int argc, char **argv)
{
    bool list_only = listing_only(argc, argv); // before Initialize eats the flags
    register_all();
    start_watchdog();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    // Names as registered (plus arguments), for listing and for deciding
    // whether any benchmark matches at all (hooks may match alone).
    std::vector<std::string> names;
    for (const Registration &r : registrations()) {
        if (r.opts.nargs == 0)
            names.push_back(r.name);
        for (int i = 0; i < r.opts.nargs && i < GR_BENCH_MAX_ARGS; i++)
            names.push_back(r.name + "/" + std::to_string(r.opts.args[i]));
    }
    if (list_only) {
        // google-benchmark would list the internal names with their
        // "/min_time:.../real_time" suffixes.
        for (const std::string &n : names)
            if (filter_matches(n))
                std::printf("%s\n", n.c_str());
        for (const AfterHook &h : after_hooks())
            if (filter_matches(h.name))
                std::printf("%s (report after the benchmarks)\n", h.name.c_str());
        benchmark::Shutdown();
        return 0;
    }
    bool any = std::any_of(names.begin(), names.end(), filter_matches);
    bool any_hook = std::any_of(after_hooks().begin(), after_hooks().end(),
                                [](const AfterHook &h) { return filter_matches(h.name); });
    if (any || !any_hook) {
        NameTrimmer display(benchmark::CreateDefaultDisplayReporter());
        benchmark::RunSpecifiedBenchmarks(&display);
    }
    {
        for (const AfterHook &h : after_hooks()) {
            if (!filter_matches(h.name))
                continue;
            std::fflush(stdout);
            Watch w(h.name.c_str());
            h.fn();
            std::fflush(stdout);
        }
    }
    benchmark::Shutdown();
    return 0;
}
