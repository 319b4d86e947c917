//! Build script for greenring. Needs the Zig version pinned in build.zig.zon; run it through ./zigw.
//!
//! Steps (see `./zigw build --help`):
//!   install (default)  libgreenring.a, include/*.h, lib/pkgconfig/greenring.pc
//!   test               every suite: plain, TSan, ASan (gcc), aarch64 cross-check
//!                      under qemu, native switch self-test, cc link check
//!   bench              google-benchmark suite (g++ link), args after `--`
//!   examples           examples/*.c -> zig-out/bin
//!   soak               tests/stress/*.c
//!   test-valgrind      suites marked valgrind, under valgrind
//!
//! Sources are discovered when the build is configured, so adding a file never
//! needs an edit here:
//!   runtime/**/*.c                 library sources
//!   runtime/arch/switch_<arch>.S   the one assembly file for the target arch
//!   tests/test_*.c                 one Check program each (+ tests/support/*.c)
//!   tests/stress/*.c               one soak program each (+ tests/support/*.c)
//!   examples/*.c                   one example program each
//!   bench/*.c                      benchmark cases (a file with its own `main` is
//!                                  a separate program, installed to bin/)
//! A suite opts into extra builds with a marker comment in its first 20 lines:
//!   /* greenring-test: tsan */  /* greenring-test: asan */  /* greenring-test: valgrind */

const std = @import("std");
const builtin = @import("builtin");
const Build = std.Build;
const LazyPath = Build.LazyPath;
const Compile = Build.Step.Compile;
const Run = Build.Step.Run;

/// build.zig.zon is the one place the pinned Zig version is written;
/// ./zigw reads the same field to install that version.
const manifest = @import("build.zig.zon");

comptime {
    const want = std.SemanticVersion.parse(manifest.minimum_zig_version) catch
        @compileError("build.zig.zon: bad minimum_zig_version");
    if (builtin.zig_version.order(want) != .eq) @compileError(
        "greenring builds with Zig " ++ manifest.minimum_zig_version ++ " exactly, not " ++
            builtin.zig_version_string ++ "; use ./zigw, which installs and runs the pinned version",
    );
}

/// Flags for every C file (zig and gcc builds alike).
const c_flags = [_][]const u8{ "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror" };
/// Flags for the preprocessed assembly file (clang warns that -std is unused on .S).
const asm_flags = [_][]const u8{ "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror" };
/// gcc AddressSanitizer build (Zig has no ASan).
const gcc_asan_flags = c_flags ++ [_][]const u8{
    "-DGR_ASAN=1", "-g", "-O1", "-fsanitize=address", "-fno-omit-frame-pointer",
};

const Sanitize = enum { none, thread, undefined };

const Marker = enum { tsan, asan, valgrind };
const marker_tag = "greenring-test:";
const marker_scan_lines = 20;

const Suite = struct {
    /// Source path relative to the build root, e.g. "tests/test_sched.c".
    path: []const u8,
    /// File stem, e.g. "test_sched".
    name: []const u8,
    markers: std.EnumSet(Marker),
};

/// Everything discovered in the source tree at configure time.
const Tree = struct {
    runtime_c: []const []const u8,
    support_c: []const []const u8,
    suites: []const Suite,
    stress: []const Suite,
    examples: []const []const u8,
    /// bench/*.c without `main`: benchmark cases linked into the suite.
    bench_c: []const []const u8,
    /// bench/*.c with their own `main` (load generators, baseline servers):
    /// standalone programs installed next to the examples.
    bench_programs: []const []const u8,
};

/// One flavour of the library (and of the programs linked against it).
const Flavor = struct {
    target: Build.ResolvedTarget,
    optimize: std.builtin.Optimize,
    sanitize_c: std.zig.SanitizeC,
    tsan: bool = false,
    valgrind: bool = false,
};

pub fn build(b: *Build) void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});
    const sanitize = b.option(
        Sanitize,
        "sanitize",
        "Library + test programs: undefined (default: UBSan; trap mode in the installed library), thread (TSan, GR_TSAN=1), none. ASan: gcc, in the test step",
    ) orelse .undefined;
    const valgrind = b.option(bool, "valgrind", "Define GR_VALGRIND=1 (runtime includes <valgrind/valgrind.h>)") orelse false;

    const tree = scanTree(b);
    const host = b.graph.host;
    const native: Build.ResolvedTarget = b.resolveTargetQuery(.{});
    // For code that runs under valgrind: with the native CPU Zig may emit
    // AVX-512, which valgrind cannot execute (SIGILL).
    const baseline: Build.ResolvedTarget = b.resolveTargetQuery(.{ .cpu_model = .baseline });

    // ---- install: libgreenring.a + headers + pkg-config file -------------
    const installed_lib = addLibrary(b, tree, .{
        .target = if (valgrind and target.query.isNative()) baseline else target,
        .optimize = optimize,
        // Trap mode: no Zig UBSan runtime needed by whoever links the archive.
        .sanitize_c = if (sanitize == .undefined) .trap else .off,
        .tsan = sanitize == .thread,
        .valgrind = valgrind,
    });
    b.installArtifact(installed_lib);
    b.installDirectory(.{
        .source_dir = b.path("include"),
        .install_dir = .header,
        .install_subdir = "",
        .include_extensions = &.{".h"},
    });
    const pc_file = b.addWriteFiles().add("greenring.pc", pkgConfigText(b));
    b.getInstallStep().dependOn(&b.addInstallFileWithDir(pc_file, .lib, "pkgconfig/greenring.pc").step);

    // Release library for the programs linked the way users link them (bench,
    // examples, cc link check): no sanitizer runtime of any kind.
    const fast: Flavor = .{ .target = native, .optimize = .fast, .sanitize_c = .off };
    const fast_lib = addLibrary(b, tree, fast);

    // Flavour of the plain test programs: follows -Doptimize/-Dsanitize/-Dvalgrind.
    const test_flavor: Flavor = .{
        .target = if (valgrind) baseline else native,
        .optimize = optimize,
        .sanitize_c = if (sanitize == .undefined) .full else .off,
        .tsan = sanitize == .thread,
        .valgrind = valgrind,
    };
    // Only built when a step that needs it runs.
    const test_lib = addLibrary(b, tree, test_flavor);

    // ---- test -------------------------------------------------------------
    const test_step = b.step("test", "Build and run every test: plain, TSan, ASan (gcc), arch self-tests (native + qemu), cc link check");
    {
        const agg = aggregator(b, "run test suites", 600);
        // (a) every suite, default flavour
        for (tree.suites) |suite| {
            const exe = addSuiteExe(b, tree, test_flavor, test_lib, suite);
            suiteEntry(agg, b.fmt("plain/{s}", .{suite.name}), &.{}, exe);
        }
        // (b) ThreadSanitizer build of the suites marked tsan
        const tsan_flavor: Flavor = .{ .target = native, .optimize = .debug, .sanitize_c = .off, .tsan = true };
        var tsan_lib: ?*Compile = null;
        for (tree.suites) |suite| {
            if (!suite.markers.contains(.tsan)) continue;
            const lib = tsan_lib orelse addLibrary(b, tree, tsan_flavor);
            tsan_lib = lib;
            const exe = addSuiteExe(b, tree, tsan_flavor, lib, suite);
            suiteEntry(agg, b.fmt("tsan/{s}", .{suite.name}), &.{}, exe);
        }
        // (c) AddressSanitizer build with the system gcc of the suites marked asan
        var asan_objs: ?[]const LazyPath = null;
        for (tree.suites) |suite| {
            if (!suite.markers.contains(.asan)) continue;
            const objs = asan_objs orelse gccAsanObjects(b, tree);
            asan_objs = objs;
            const bin = gccAsanLink(b, objs, suite);
            agg.addArgs(&.{ "--suite", b.fmt("asan/{s}", .{suite.name}) });
            agg.addFileArg(bin);
        }
        // (d) context-switch self-test: natively, and cross-built for the other
        //     architecture and run under qemu-user
        addSelftests(b, agg, host);
        // (e) link the installed library like a user: cc + pkg-config --static
        const hello = ccLinkCheck(b, fast_lib);
        agg.addArgs(&.{ "--suite", "cc-link/hello" });
        agg.addFileArg(hello);

        test_step.dependOn(&agg.step);
    }

    // ---- soak -------------------------------------------------------------
    const soak_step = b.step("soak", "Build and run the stress programs tests/stress/*.c (not part of test)");
    {
        const agg = aggregator(b, "run soak suites", 0);
        for (tree.stress) |suite| {
            const exe = addSuiteExe(b, tree, test_flavor, test_lib, suite);
            suiteEntry(agg, b.fmt("soak/{s}", .{suite.name}), &.{}, exe);
        }
        soak_step.dependOn(&agg.step);
    }

    // ---- test-valgrind ----------------------------------------------------
    const vg_step = b.step("test-valgrind", "Build the suites marked valgrind with GR_VALGRIND=1 and run them under valgrind");
    {
        const vg_flavor: Flavor = .{
            .target = baseline,
            .optimize = .debug,
            .sanitize_c = .trap,
            .valgrind = true,
        };
        const agg = aggregator(b, "run valgrind suites", 1800);
        var vg_lib: ?*Compile = null;
        for (tree.suites) |suite| {
            if (!suite.markers.contains(.valgrind)) continue;
            const lib = vg_lib orelse addLibrary(b, tree, vg_flavor);
            vg_lib = lib;
            const exe = addSuiteExe(b, tree, vg_flavor, lib, suite);
            suiteEntry(agg, b.fmt("valgrind/{s}", .{suite.name}), &.{
                "valgrind", "--error-exitcode=1", "--leak-check=full", "-q",
            }, exe);
        }
        vg_step.dependOn(&agg.step);
    }

    // ---- examples ---------------------------------------------------------
    const examples_step = b.step("examples", "Build examples/*.c (ReleaseFast library) into zig-out/bin");
    for (tree.examples) |path| {
        const mod = cModule(b, fast);
        mod.addCSourceFiles(.{ .files = &.{path}, .flags = &c_flags });
        mod.linkLibrary(fast_lib);
        mod.linkSystemLibrary("uring", .{});
        const exe = b.addExecutable(.{ .name = stem(path), .root_module = mod });
        examples_step.dependOn(&b.addInstallArtifact(exe, .{}).step);
    }

    // ---- bench ------------------------------------------------------------
    const bench_step = b.step("bench", "Build (ReleaseFast, g++ link) and run the benchmark suite; extra args after --");
    {
        const link = b.addSystemCommand(&.{ "g++", "-O2" });
        link.setName("g++ link greenring-bench");
        link.addPrefixedDirectoryArg("-I", b.path("include"));
        link.addPrefixedDirectoryArg("-I", b.path("bench"));
        link.addArgs(&.{ "-MD", "-MF" });
        _ = link.addDepFileOutputArg("shim.d");
        link.addFileArg(b.path("bench/shim.cc"));
        for (tree.bench_c) |path| {
            const mod = cModule(b, fast);
            mod.addIncludePath(b.path("bench"));
            mod.addCSourceFiles(.{ .files = &.{path}, .flags = &c_flags });
            // One object per file: benchmarks register themselves from
            // constructors, which an archive would drop.
            const obj = b.addObject(.{ .name = stem(path), .root_module = mod });
            link.addFileArg(obj.getEmittedBin());
        }
        link.addFileArg(fast_lib.getEmittedBin());
        link.addArgs(&.{ "-lbenchmark", "-luring", "-pthread", "-o" });
        const bench_bin = link.addOutputFileArg("greenring-bench");

        // Standalone bench programs (own `main`): installed to bin/ before
        // the suite runs.
        var installs: std.ArrayList(*Build.Step) = .empty;
        for (tree.bench_programs) |path| {
            const mod = cModule(b, fast);
            mod.addIncludePath(b.path("bench"));
            mod.addCSourceFiles(.{ .files = &.{path}, .flags = &c_flags });
            mod.linkLibrary(fast_lib);
            mod.linkSystemLibrary("uring", .{});
            const exe = b.addExecutable(.{ .name = stem(path), .root_module = mod });
            installs.append(b.allocator, &b.addInstallArtifact(exe, .{}).step) catch @panic("OOM");
        }

        const run = Run.create(b, "run greenring-bench");
        for (installs.items) |install| run.step.dependOn(install);
        run.addFileArg(bench_bin);
        run.addPassthruArgs();
        run.setCwd(b.path(""));
        run.stdio = .inherit;
        run.has_side_effects = true;
        bench_step.dependOn(&run.step);
    }
}

// ---------------------------------------------------------------------------
// Library and programs

fn cModule(b: *Build, flavor: Flavor) *Build.Module {
    const mod = b.createModule(.{
        .target = flavor.target,
        .optimize = flavor.optimize,
        .link_libc = true,
        .sanitize_c = flavor.sanitize_c,
        .sanitize_thread = flavor.tsan,
    });
    mod.addIncludePath(b.path("include"));
    mod.addIncludePath(b.path("runtime"));
    if (flavor.tsan) mod.addCMacro("GR_TSAN", "1");
    if (flavor.valgrind) mod.addCMacro("GR_VALGRIND", "1");
    return mod;
}

fn switchAsm(arch: std.Target.Cpu.Arch) []const u8 {
    return switch (arch) {
        .x86_64 => "runtime/arch/switch_x86_64.S",
        .aarch64 => "runtime/arch/switch_aarch64.S",
        else => std.debug.panic("greenring: no context switch for {t} (x86_64 and aarch64 only)", .{arch}),
    };
}

/// The static library. No system libraries are linked into it (that would
/// copy liburing.so into the archive); programs link them, and the .pc file
/// declares them.
fn addLibrary(b: *Build, tree: Tree, flavor: Flavor) *Compile {
    const mod = cModule(b, flavor);
    mod.addCSourceFiles(.{ .files = tree.runtime_c, .flags = &c_flags });
    mod.addCSourceFile(.{ .file = b.path(switchAsm(flavor.target.result.cpu.arch)), .flags = &asm_flags });
    return b.addLibrary(.{ .name = "greenring", .linkage = .static, .root_module = mod });
}

/// A Check program: the suite file + tests/support/*.c, linked against `lib`.
fn addSuiteExe(b: *Build, tree: Tree, flavor: Flavor, lib: *Compile, suite: Suite) *Compile {
    const mod = cModule(b, flavor);
    mod.addIncludePath(b.path("tests"));
    mod.addCSourceFiles(.{ .files = &.{suite.path}, .flags = &c_flags });
    mod.addCSourceFiles(.{ .files = tree.support_c, .flags = &c_flags });
    mod.linkLibrary(lib);
    // Debian's libcheck is static only and needs -lsubunit -lrt -lm -pthread:
    // pkg-config supplies them.
    mod.linkSystemLibrary("check", .{ .use_pkg_config = .force });
    mod.linkSystemLibrary("uring", .{});
    return b.addExecutable(.{ .name = suite.name, .root_module = mod });
}

/// tests/arch/switch_selftest.c + runtime/arch/context.c + the switch for the
/// target: native, and the other architecture (musl, static) under qemu-user.
fn addSelftests(b: *Build, agg: *Run, host: Build.ResolvedTarget) void {
    const host_arch = host.result.cpu.arch;
    const other_arch: std.Target.Cpu.Arch = switch (host_arch) {
        .x86_64 => .aarch64,
        .aarch64 => .x86_64,
        else => std.debug.panic("greenring: unsupported build host {t}", .{host_arch}),
    };
    const native = selftestExe(b, b.resolveTargetQuery(.{}));
    suiteEntry(agg, b.fmt("native-{t}/switch_selftest", .{host_arch}), &.{}, native);

    const cross = selftestExe(b, b.resolveTargetQuery(.{
        .cpu_arch = other_arch,
        .os_tag = .linux,
        .abi = .musl,
    }));
    suiteEntry(agg, b.fmt("qemu-{t}/switch_selftest", .{other_arch}), &.{
        b.fmt("qemu-{t}-static", .{other_arch}),
    }, cross);
}

fn selftestExe(b: *Build, target: Build.ResolvedTarget) *Compile {
    const mod = cModule(b, .{ .target = target, .optimize = .debug, .sanitize_c = .trap });
    mod.addCSourceFiles(.{
        .files = &.{ "tests/arch/switch_selftest.c", "runtime/arch/context.c" },
        .flags = &c_flags,
    });
    mod.addCSourceFile(.{ .file = b.path(switchAsm(target.result.cpu.arch)), .flags = &asm_flags });
    return b.addExecutable(.{
        .name = b.fmt("switch_selftest-{t}", .{target.result.cpu.arch}),
        .root_module = mod,
        .linkage = if (target.result.abi == .musl) .static else null,
    });
}

// ---------------------------------------------------------------------------
// gcc AddressSanitizer builds (cached per object; headers tracked by -MD)

fn gccAsanObjects(b: *Build, tree: Tree) []const LazyPath {
    var objs: std.ArrayList(LazyPath) = .empty;
    for (tree.runtime_c) |path| objs.append(b.allocator, gccAsanCompile(b, path)) catch @panic("OOM");
    objs.append(b.allocator, gccAsanCompile(b, switchAsm(b.graph.host.result.cpu.arch))) catch @panic("OOM");
    for (tree.support_c) |path| objs.append(b.allocator, gccAsanCompile(b, path)) catch @panic("OOM");
    return objs.items;
}

fn gccAsanCompile(b: *Build, path: []const u8) LazyPath {
    const cc = b.addSystemCommand(&.{"gcc"});
    cc.setName(b.fmt("gcc -fsanitize=address {s}", .{path}));
    cc.addArgs(&gcc_asan_flags);
    cc.addPrefixedDirectoryArg("-I", b.path("include"));
    cc.addPrefixedDirectoryArg("-I", b.path("runtime"));
    cc.addPrefixedDirectoryArg("-I", b.path("tests"));
    cc.addArgs(&.{ "-MD", "-MF" });
    _ = cc.addDepFileOutputArg("obj.d");
    cc.addArg("-c");
    cc.addFileArg(b.path(path));
    cc.addArg("-o");
    return cc.addOutputFileArg(b.fmt("{s}.o", .{std.fs.path.basename(path)}));
}

fn gccAsanLink(b: *Build, common_objs: []const LazyPath, suite: Suite) LazyPath {
    const suite_obj = gccAsanCompile(b, suite.path);
    // pkg-config runs when the step runs, not at configure time.
    const link = b.addSystemCommand(&.{
        "sh", "-c", "exec gcc \"$@\" $(pkg-config --libs check) -luring -pthread", "gcc-asan-link",
    });
    link.setName(b.fmt("gcc -fsanitize=address link {s}", .{suite.name}));
    link.addArgs(&.{ "-g", "-fsanitize=address" });
    link.addFileArg(suite_obj);
    for (common_objs) |obj| link.addFileArg(obj);
    link.addArg("-o");
    return link.addOutputFileArg(suite.name);
}

// ---------------------------------------------------------------------------
// pkg-config file and the cc link check

/// `prefix` is derived from the .pc file's own location, so the same file is
/// right wherever the tree is installed (--prefix, DESTDIR, a copy in the
/// cache). The build runner resolves the install prefix only when the build runs, so
/// configure-time text cannot contain it.
fn pkgConfigText(b: *Build) []const u8 {
    return b.fmt(
        \\prefix=${{pcfiledir}}/../..
        \\exec_prefix=${{prefix}}
        \\libdir=${{prefix}}/lib
        \\includedir=${{prefix}}/include
        \\
        \\Name: greenring
        \\Description: io_uring-native green-thread runtime for Linux
        \\Version: {s}
        \\Requires.private: liburing
        \\Libs: -L${{libdir}} -lgreenring
        \\Libs.private: -pthread
        \\Cflags: -I${{includedir}}
        \\
    , .{manifest.version});
}

/// Lay out an installed prefix (lib/libgreenring.a, include/, lib/pkgconfig/)
/// in the cache and build examples/hello.c from it with the system cc and
/// `pkg-config --static`. Returns the program.
fn ccLinkCheck(b: *Build, lib: *Compile) LazyPath {
    const prefix = b.addWriteFiles();
    _ = prefix.addCopyFile(lib.getEmittedBin(), "lib/libgreenring.a");
    _ = prefix.addCopyDirectory(b.path("include"), "include", .{ .include_extensions = &.{".h"} });
    _ = prefix.add("lib/pkgconfig/greenring.pc", pkgConfigText(b));

    const script =
        \\set -e
        \\prefix=$1 src=$2 out=$3
        \\flags=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs --static greenring)
        \\exec cc "$src" $flags -o "$out"
    ;
    const cc = b.addSystemCommand(&.{ "sh", "-c", script, "cc-link-check" });
    cc.setName("cc link check (examples/hello.c)");
    cc.addDirectoryArg(prefix.getDirectory());
    cc.addFileArg(b.path("examples/hello.c"));
    return cc.addOutputFileArg("hello");
}

// ---------------------------------------------------------------------------
// Aggregator: tests/run_suites.sh runs programs one after another and sums

/// `timeout_s`: per-program limit in seconds, 0 = none.
fn aggregator(b: *Build, name: []const u8, timeout_s: u32) *Run {
    const agg = Run.create(b, name);
    agg.addArg("bash");
    agg.addFileArg(b.path("tests/run_suites.sh"));
    agg.addArgs(&.{ "--timeout", b.fmt("{d}", .{timeout_s}) });
    agg.setCwd(b.path(""));
    agg.stdio = .inherit;
    agg.has_side_effects = true;
    return agg;
}

fn suiteEntry(agg: *Run, label: []const u8, wrapper: []const []const u8, exe: *Compile) void {
    agg.addArgs(&.{ "--suite", label });
    agg.addArgs(wrapper);
    agg.addArtifactArg(exe);
}

// ---------------------------------------------------------------------------
// Configure-time discovery of the source tree

fn scanTree(b: *Build) Tree {
    var suites: std.ArrayList(Suite) = .empty;
    for (listFiles(b, "tests", ".c", false)) |path| {
        if (!std.mem.startsWith(u8, std.fs.path.basename(path), "test_")) continue;
        suites.append(b.allocator, .{
            .path = path,
            .name = stem(path),
            .markers = readMarkers(b, path),
        }) catch @panic("OOM");
    }
    var stress: std.ArrayList(Suite) = .empty;
    for (listFiles(b, "tests/stress", ".c", false)) |path| {
        stress.append(b.allocator, .{ .path = path, .name = stem(path), .markers = .empty }) catch @panic("OOM");
    }
    var bench_c: std.ArrayList([]const u8) = .empty;
    var bench_programs: std.ArrayList([]const u8) = .empty;
    for (listFiles(b, "bench", ".c", false)) |path| {
        const list = if (definesMain(b, path)) &bench_programs else &bench_c;
        list.append(b.allocator, path) catch @panic("OOM");
    }
    return .{
        .runtime_c = listFiles(b, "runtime", ".c", true),
        .support_c = listFiles(b, "tests/support", ".c", false),
        .suites = suites.items,
        .stress = stress.items,
        .examples = listFiles(b, "examples", ".c", false),
        .bench_c = bench_c.items,
        .bench_programs = bench_programs.items,
    };
}

/// Sorted paths (relative to the build root) of the files under `dir` ending
/// in `ext`. Registers the directories with the configure cache, so adding or
/// removing a file re-runs configuration.
fn listFiles(b: *Build, dir_path: []const u8, ext: []const u8, recursive: bool) []const []const u8 {
    const io = b.graph.io;
    const arena = b.allocator;
    var out: std.ArrayList([]const u8) = .empty;

    var dir = b.root.openDir(io, dir_path, .{ .iterate = true }) catch |err| switch (err) {
        error.FileNotFound, error.NotDir => {
            // Re-configure when it appears.
            b.dependOnDirectoryContents(b.path(std.fs.path.dirname(dir_path) orelse ""));
            return &.{};
        },
        else => std.debug.panic("cannot open {s}: {t}", .{ dir_path, err }),
    };
    defer dir.close(io);
    b.dependOnDirectoryContents(b.path(dir_path));

    if (recursive) {
        var walker = dir.walk(arena) catch @panic("OOM");
        defer walker.deinit();
        while (walker.next(io) catch |err| std.debug.panic("cannot walk {s}: {t}", .{ dir_path, err })) |entry| {
            const rel = b.pathJoin(&.{ dir_path, entry.path });
            switch (entry.kind) {
                .directory => b.dependOnDirectoryContents(b.path(rel)),
                .file => if (std.mem.endsWith(u8, entry.basename, ext)) out.append(arena, rel) catch @panic("OOM"),
                else => {},
            }
        }
    } else {
        var it = dir.iterate();
        while (it.next(io) catch |err| std.debug.panic("cannot list {s}: {t}", .{ dir_path, err })) |entry| {
            if (entry.kind != .file or !std.mem.endsWith(u8, entry.name, ext)) continue;
            out.append(arena, b.pathJoin(&.{ dir_path, entry.name })) catch @panic("OOM");
        }
    }
    std.mem.sort([]const u8, out.items, {}, struct {
        fn lessThan(_: void, lhs: []const u8, rhs: []const u8) bool {
            return std.mem.lessThan(u8, lhs, rhs);
        }
    }.lessThan);
    return out.items;
}

fn readSource(b: *Build, path: []const u8) []const u8 {
    b.dependOnFileContents(b.path(path));
    const sub_path = b.pathJoin(&.{ b.root.sub_path, path });
    return b.root.root_dir.handle.readFileAlloc(b.graph.io, sub_path, b.allocator, .limited(1 << 24)) catch |err|
        std.debug.panic("cannot read {s}: {t}", .{ path, err });
}

/// Whether the file defines `main`: a line starting with `int main(` (or
/// `main(` after a return type on the line before).
fn definesMain(b: *Build, path: []const u8) bool {
    var lines = std.mem.splitScalar(u8, readSource(b, path), '\n');
    while (lines.next()) |line| {
        var rest = std.mem.trimStart(u8, line, " \t");
        if (std.mem.startsWith(u8, rest, "int ")) rest = std.mem.trimStart(u8, rest[4..], " \t");
        if (!std.mem.startsWith(u8, rest, "main")) continue;
        if (std.mem.startsWith(u8, std.mem.trimStart(u8, rest[4..], " \t"), "(")) return true;
    }
    return false;
}

/// Markers are comments `/* greenring-test: NAME */` (NAME = tsan, asan,
/// valgrind; several names may share one comment) in the first 20 lines.
fn readMarkers(b: *Build, path: []const u8) std.EnumSet(Marker) {
    const bytes = readSource(b, path);
    var set: std.EnumSet(Marker) = .empty;
    var lines = std.mem.splitScalar(u8, bytes, '\n');
    var n: usize = 0;
    while (lines.next()) |line| : (n += 1) {
        if (n == marker_scan_lines) break;
        var rest = line;
        while (std.mem.find(u8, rest, marker_tag)) |at| {
            rest = rest[at + marker_tag.len ..];
            const end = std.mem.find(u8, rest, "*/") orelse rest.len;
            var words = std.mem.tokenizeAny(u8, rest[0..end], " \t,");
            while (words.next()) |word| {
                const m = std.meta.stringToEnum(Marker, word) orelse
                    std.debug.panic("{s}: unknown test marker '{s}' (known: tsan, asan, valgrind)", .{ path, word });
                set.insert(m);
            }
            rest = rest[end..];
        }
    }
    return set;
}

fn stem(path: []const u8) []const u8 {
    const base = std.fs.path.basename(path);
    return base[0 .. std.mem.findScalarLast(u8, base, '.') orelse base.len];
}
