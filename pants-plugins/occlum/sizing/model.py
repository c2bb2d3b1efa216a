"""The JVM memory budget and the Occlum limits it needs, per release.

Sources (docs/memory-sizing.md has the full argument):
* docs/occlum-contract.md §3.5: before 0.24.2 each process reserves ELF + default_heap_size +
  default_stack_size + default_mmap_size out of user_space_size, and every JVM mmap must fit
  its default_mmap_size; from 0.24.2 mmaps come from one user-space pool; from 0.30.0
  user_space_max_size, when set, is the static (non-EDMM) size.
* docs/occlum-contract.md §1.4: default_mmap_size is still required after 0.24.2 and still sets the
  default RLIMIT_AS, so the plugin keeps it equal to the JVM's mmaps.
* HotSpot JDK 11 x86_64 defaults for every option that is absent (constants below).

Everything is in bytes; every component and limit is rounded up to whole MB (so also to 4 KiB).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

from occlum.config.releases import has_kernel_space_heap_max_size, parse_release
from occlum.config.sizes import GB, MB, TB
from occlum.sizing.jvm_options import JvmOptionError, JvmOptions

# --- HotSpot JDK 11 (x86_64 Linux) defaults, used when an option is absent -------------------
DEFAULT_MAX_RAM_PERCENTAGE = 25.0  # heap = 1/4 of the RAM the JVM sees
DEFAULT_CODE_CACHE_TIERED = 240 * MB  # ReservedCodeCacheSize with TieredCompilation (the default)
DEFAULT_CODE_CACHE_NOT_TIERED = 48 * MB  # ... with -XX:-TieredCompilation
DEFAULT_THREAD_STACK = 1 * MB  # ThreadStackSize=1024 (KB) on x86_64
DEFAULT_COMPRESSED_CLASS_SPACE = 1 * GB  # reserved up front when compressed class pointers are on
# MaxMetaspaceSize is unlimited by default. An enclave cannot be unlimited, so the model counts
# this much and check_limits warns: the largest value in Occlum's Java demos (docs/occlum-contract.md §3.6), about
# twice what a Spring Boot 2 service of ~20k classes uses.
MODELLED_UNLIMITED_METASPACE = 256 * MB

# --- Estimates the options do not determine ---------------------------------------------------
# libjvm.so, the JDK's native libraries and libc/libstdc++ (~32MB mapped), plus lib/modules: a
# 64-bit JVM maps the whole jimage file (~128MB for a full JDK 11), and Occlum backs every file
# mapping with enclave memory.
JVM_LIBRARIES = 160 * MB
# The JVM's own mallocs (symbol tables, JIT arenas, GC queues); they start in the brk heap.
JVM_NATIVE_MALLOC = 32 * MB
ELF_PER_PROCESS = 20 * MB  # docs/occlum-contract.md §3.5: "about 20 MB of ELF" per process
DEFAULT_STACK_SIZE = 4 * MB  # Occlum template; the launcher's main thread only waits for JavaMain
KERNEL_SPACE_HEAP = 64 * MB  # every Occlum Java demo, both release families (docs/occlum-contract.md §3.5)
KERNEL_SPACE_STACK = 1 * MB  # template and demos; raise on SGX error 0x1009 (docs/occlum-contract.md §3.7, #1534)
DEFAULT_JAVA_THREADS = 64  # JVM ~20-30 threads + a capped Tomcat pool; the demos' TCS count
DEFAULT_HEADROOM_PERCENT = 10.0  # on the JVM's mmaps: guard pages, fragmentation, unmodelled mmaps
# No SGX platform offers an enclave this large (EDMM maxima start at 16GB); past it a size is a
# mistake in the options, and sums of such sizes stop meaning anything.
MAX_USER_SPACE = 1 * TB
DEFAULT_CHILD_MMAP = 64 * MB  # >= 0.24.2: what a small spawned tool maps from the shared pool


class SizingError(ValueError):
    """Inputs the model cannot size (e.g. a heap percentage that can never fit)."""


@dataclass(frozen=True)
class PerProcess:
    """Hand-set `process.*` sizes in bytes (None: the model chooses)."""

    default_heap_size: Optional[int] = None
    default_stack_size: Optional[int] = None
    default_mmap_size: Optional[int] = None


@dataclass(frozen=True)
class Component:
    """One part of the JVM's memory: `region` is "mmap" or "brk" (default_heap_size)."""

    name: str
    size: int
    source: str  # the option that set it, or the default and why
    region: str = "mmap"


@dataclass(frozen=True)
class Limit:
    """A derived Occlum limit; `value` is bytes, or a count for max_num_of_threads."""

    knob: str
    value: int
    how: str


@dataclass(frozen=True)
class Budget:
    release: str
    java_threads: int
    child_processes: int
    headroom_percent: float
    components: tuple[Component, ...]
    limits: tuple[Limit, ...]

    @property
    def mmap_total(self) -> int:
        return sum(c.size for c in self.components if c.region == "mmap")

    def component(self, name: str) -> Component:
        return next(c for c in self.components if c.name == name)

    def limit(self, knob: str) -> Limit:
        return next(lim for lim in self.limits if lim.knob == knob)

    def value(self, knob: str) -> int:
        return self.limit(knob).value


def pools_user_space(release: str) -> bool:
    """>= 0.24.2: mmaps come from one pool, not a per-process default_mmap_size region."""
    return parse_release(release) >= (0, 24, 2)


def mb_ceil(num_bytes: int | Fraction) -> int:
    """Round up to whole MB (a multiple of 4 KiB too)."""
    return -(-num_bytes // MB) * MB


def mb(num_bytes: int) -> str:
    return f"{num_bytes // MB}MB"


def derive_limits(
    release: str,
    jvm: JvmOptions,
    *,
    java_threads: int = DEFAULT_JAVA_THREADS,
    child_processes: int = 0,
    headroom_percent: float = DEFAULT_HEADROOM_PERCENT,
    child_mmap_size: int = DEFAULT_CHILD_MMAP,
    per_process: Optional[PerProcess] = None,
) -> Budget:
    """The JVM budget for these options and the smallest Occlum limits that hold it.

    `per_process` holds the hand-set `process.*` sizes; they are in force in every process, so
    the user space is sized with them instead of the model's own choices.
    """
    per_process = per_process or PerProcess()
    parse_release(release)  # reject unknown releases early
    if java_threads < 1 or child_processes < 0 or headroom_percent < 0 or child_mmap_size < 0:
        raise SizingError(
            f"need java_threads >= 1, child_processes >= 0, headroom_percent >= 0 and child_mmap_size >= 0; "
            f"got {java_threads}, {child_processes}, {headroom_percent}, {child_mmap_size}"
        )
    if jvm.max_heap is not None and jvm.initial_heap is not None and jvm.initial_heap > jvm.max_heap:
        # HotSpot: "Initial heap size set to a larger value than the maximum heap size".
        raise JvmOptionError("-Xms", mb(mb_ceil(jvm.initial_heap)), "at most the maximum heap size (-Xmx)")

    def budget_for(heap: int, heap_source: str) -> Budget:
        return _budget(
            release,
            jvm,
            heap,
            heap_source,
            java_threads,
            child_processes,
            Fraction(str(headroom_percent)),
            child_mmap_size,
            per_process,
        )

    if jvm.max_heap is not None:
        return _bounded(budget_for(mb_ceil(jvm.max_heap), "-Xmx/-XX:MaxHeapSize"))

    pct = jvm.max_ram_percentage if jvm.max_ram_percentage is not None else DEFAULT_MAX_RAM_PERCENTAGE
    pct_src = "-XX:MaxRAMPercentage" if jvm.max_ram_percentage is not None else "default MaxRAMPercentage"

    def ergonomic(ram: int, ram_src: str) -> Budget:
        heap = mb_ceil(Fraction(ram) * Fraction(str(pct)) / 100)
        source = f"{pct_src} {pct:g}% of {ram_src} {mb(ram)}"
        if jvm.initial_heap is not None and jvm.initial_heap > heap:
            heap, source = mb_ceil(jvm.initial_heap), "-Xms (above the ergonomic maximum heap)"
        return budget_for(heap, source)

    if jvm.max_ram is not None:  # an explicit -XX:MaxRAM replaces the RAM the JVM detects
        return _bounded(ergonomic(jvm.max_ram, "-XX:MaxRAM"))

    # Inside Occlum sysinfo() reports the user space as total RAM, so the heap is a share of the
    # user space it helps to size: find the smallest user space U that holds the budget for
    # heap = pct% of U. The need grows slower than U unless heap (+ default direct memory) alone
    # takes the whole U, so binary search over whole MB finds U or proves there is none.
    def fits(u_mb: int) -> Optional[Budget]:
        b = ergonomic(u_mb * MB, "the user space")
        return b if b.value("user_space_size") <= u_mb * MB else None

    lo, hi = 1, 16 * TB // MB
    if fits(hi) is None:
        raise SizingError(
            f"{pct_src} {pct:g}% makes the heap (and MaxDirectMemorySize, which defaults to it) "
            f"need more than the whole user space the JVM sees; give -Xmx, a smaller MaxRAMPercentage, "
            f"or -XX:MaxDirectMemorySize"
        )
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fits(mid) else (mid + 1, hi)
    found = fits(lo)
    assert found is not None
    return _bounded(found)


def _bounded(budget: Budget) -> Budget:
    user = budget.limit("user_space_size")
    if user.value > MAX_USER_SPACE:
        raise SizingError(
            f"they need a user space of {mb(mb_ceil(user.value))} ({user.how}), more than {mb(MAX_USER_SPACE)}, "
            "the most this backend sizes an enclave for; lower -Xmx, -Xss, the metaspace and code cache bounds, "
            "or `java_threads` / `child_processes`"
        )
    return budget


def _budget(
    release: str,
    jvm: JvmOptions,
    heap: int,
    heap_source: str,
    threads: int,
    children: int,
    headroom: Fraction,
    child_mmap_size: int,
    per_process: PerProcess,
) -> Budget:
    comps = [Component("Java heap", heap, heap_source)]
    # With compressed oops on (HotSpot's default below 32GB of heap), JDK 11 also uses compressed
    # class pointers and reserves CompressedClassSpaceSize up front; when MaxMetaspaceSize is set,
    # HotSpot shrinks the class space to fit inside it, so it is no extra.
    if jvm.max_metaspace is not None:
        comps.append(Component("metaspace", mb_ceil(jvm.max_metaspace), "-XX:MaxMetaspaceSize"))
    else:
        comps.append(Component("metaspace", MODELLED_UNLIMITED_METASPACE, "not set (unlimited): modelled as 256MB"))
        if jvm.compressed_oops is not False:
            size = jvm.compressed_class_space or DEFAULT_COMPRESSED_CLASS_SPACE
            src = "-XX:CompressedClassSpaceSize" if jvm.compressed_class_space else "default 1GB"
            comps.append(Component("compressed class space", mb_ceil(size), f"{src} (compressed oops on)"))
    if jvm.reserved_code_cache is not None:
        comps.append(Component("code cache", mb_ceil(jvm.reserved_code_cache), "-XX:ReservedCodeCacheSize"))
    elif jvm.tiered_compilation is False:
        comps.append(Component("code cache", DEFAULT_CODE_CACHE_NOT_TIERED, "default without tiered compilation"))
    else:
        comps.append(Component("code cache", DEFAULT_CODE_CACHE_TIERED, "default with tiered compilation"))
    if jvm.max_direct_memory is not None:
        comps.append(Component("direct memory", mb_ceil(jvm.max_direct_memory), "-XX:MaxDirectMemorySize"))
    else:
        comps.append(Component("direct memory", heap, "default: the max heap"))
    xss = jvm.thread_stack or DEFAULT_THREAD_STACK  # -Xss0 means HotSpot's default too
    comps.append(
        Component(
            "thread stacks",
            mb_ceil(threads * xss),
            f"{threads} threads x {_fmt_small(xss)} ({'-Xss' if jvm.thread_stack else 'default -Xss'})",
        )
    )
    # G1 (JDK 11's default collector): two mark bitmaps (heap/64 each) plus card table, block
    # offset table and card counts (heap/512 each).
    comps.append(
        Component(
            "GC data structures", mb_ceil(Fraction(heap, 32) + Fraction(3 * heap, 512)), "G1: heap/32 + 3 x heap/512"
        )
    )
    comps.append(
        Component("JVM libraries + lib/modules", JVM_LIBRARIES, "estimate: libjvm + JDK libs 32MB, jimage 128MB")
    )
    comps.append(Component("JVM native malloc", JVM_NATIVE_MALLOC, "estimate: symbol tables, JIT, GC queues", "brk"))

    mmaps = [c for c in comps if c.region == "mmap"]
    mmap_sum = sum(c.size for c in mmaps)
    mmap_need = mb_ceil(mmap_sum * (100 + headroom) / 100)
    sum_text = " + ".join(f"{c.name} {mb(c.size)}" for c in mmaps)
    mmap_how = f"{sum_text} = {mb(mmap_sum)}, + headroom {float(headroom):g}% = {mb(mmap_need)}"
    # What each process gets in force: the hand-set sizes where given, else the model's choices.
    brk = per_process.default_heap_size or JVM_NATIVE_MALLOC
    stack = per_process.default_stack_size or DEFAULT_STACK_SIZE
    per_process_fixed = ELF_PER_PROCESS + brk + stack
    fixed_text = (
        f"ELF {mb(ELF_PER_PROCESS)} + default_heap_size {_hand(brk, per_process.default_heap_size)} "
        f"+ default_stack_size {_hand(stack, per_process.default_stack_size)}"
    )

    if not pools_user_space(release):
        mmap_how = f"every JVM mapping must fit the per-process region (before 0.24.2): {mmap_how}"
        # Every process reserves ELF + heap + stack + the whole default_mmap_size when it starts.
        region_mmap = per_process.default_mmap_size or mmap_need
        region = per_process_fixed + region_mmap
        user = (1 + children) * region
        user_how = (
            f"({fixed_text} + default_mmap_size {_hand(region_mmap, per_process.default_mmap_size)}) "
            f"= {mb(region)} per process"
        )
        user_how += f" x {1 + children} processes = {mb(user)}" if children else ""
        user_how += "; each process reserves its region at creation (before 0.24.2)"
    else:
        mmap_how = f"not reserved since 0.24.2, but still the default RLIMIT_AS, so kept at the JVM's mmaps: {mmap_how}"
        # One pool: brk and stack are per process, mmaps (the JVM's, and each child's) come from it.
        user = mmap_need + (1 + children) * per_process_fixed + children * child_mmap_size
        user_how = f"one pool (0.24.2+): JVM mmaps {mb(mmap_need)} + {fixed_text}"
        if children:
            user_how += f" + {children} child processes x ({mb(per_process_fixed)} fixed + {mb(child_mmap_size)} mmaps)"
        user_how += f" = {mb(user)}"
        if parse_release(release) >= (0, 30, 0):
            user_how += "; the static size without EDMM, unless the user_space_max_size field sets it"
    limits = (
        Limit("user_space_size", user, user_how),
        Limit("default_mmap_size", mmap_need, mmap_how),
        Limit("default_heap_size", JVM_NATIVE_MALLOC, f"the JVM's own mallocs (brk), estimate {mb(JVM_NATIVE_MALLOC)}"),
        Limit(
            "default_stack_size",
            DEFAULT_STACK_SIZE,
            "Occlum template 4MB: the launcher's main thread only waits; Java threads get -Xss stacks",
        ),
        Limit("kernel_space_heap_size", KERNEL_SPACE_HEAP, "64MB, the value of every Occlum Java demo"),
        Limit(
            "kernel_space_stack_size",
            KERNEL_SPACE_STACK,
            "1MB, the value of Occlum's template and demos (raise it if threads fail with SGX error 0x1009)",
        ),
        Limit(
            "max_num_of_threads",
            threads + children,
            f"{threads} Java threads"
            + (f" + {children} child processes x 1 thread" if children else "")
            + f" = {threads + children} (one TCS per LibOS thread)",
        ),
    )
    return Budget(release, threads, children, float(headroom), tuple(comps), limits)


def _hand(value: int, hand_set: Optional[int]) -> str:
    """A size in force, marked when it is the hand-set one."""
    return _fmt_small(value) + (" (set by hand)" if hand_set else "")


def _fmt_small(num_bytes: int) -> str:
    return mb(num_bytes) if num_bytes % MB == 0 else f"{num_bytes // 1024}KB"


def effective_user_space(release: str, limits: dict) -> Optional[int]:
    """The static user space a config gives: user_space_max_size wins from 0.30.0 if set."""
    if parse_release(release) >= (0, 30, 0) and limits.get("user_space_max_size") is not None:
        return limits["user_space_max_size"]
    return limits.get("user_space_size")


def epc_estimate(budget: Budget, limits: Optional[dict] = None) -> Limit:
    """Enclave memory without EDMM: user space + kernel heap + threads x kernel stack.

    docs/occlum-contract.md §3.5, Occlum #121.

    `limits` are the hand-set values (None or missing = the derived one is used).
    """
    given = dict(limits or {})

    def pick(knob: str) -> int:
        v = given.get(knob)
        return v if v is not None else budget.value(knob)

    user = effective_user_space(budget.release, given) or budget.value("user_space_size")
    # Without EDMM kernel_space_heap_max_size, when set (0.29.4+), is the static kernel heap.
    use_max = has_kernel_space_heap_max_size(budget.release) and given.get("kernel_space_heap_max_size") is not None
    kheap = given["kernel_space_heap_max_size"] if use_max else pick("kernel_space_heap_size")
    kstack, threads = pick("kernel_space_stack_size"), pick("max_num_of_threads")
    total = user + kheap + threads * kstack
    return Limit(
        "enclave_memory",
        total,
        f"user space {mb(user)} + kernel heap {mb(kheap)} + {threads} threads x kernel stack "
        f"{_fmt_small(kstack)} = {mb(mb_ceil(total))} (plus a few MB of LibOS code and TCS pages)",
    )
