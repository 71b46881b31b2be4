// The CUDA batch planner (native/cuda/batch_plan.h), run on the host without a GPU: every work list covers its layer
// exactly once, in an order that depends on the layer's shape alone; and the launch geometry the kernels were designed
// for holds on the devices they target: a large layer fills an H100/H200 with several blocks per multiprocessor,
// BigGAN's layers fill it, and a small network's plan stays on its latency path.
import * as assert from 'node:assert/strict';

import type { CudaBatchPlan, NativeAddon } from '../../binding';
import { nativeAddon } from '../../lib/backends';
import { CommitKind } from '../../lib/codes';
import { networks, synthetic } from '../../bench/networks';
import { randomInt } from '../support/helpers';

const addon = nativeAddon() as NativeAddon | null;

type Shape = { outer: number; rows: number; inner: number; vectorNorm: boolean; hasOut: boolean; vectorLoads?: boolean };
type Caps = { multiprocessors: number; maxCluster: number; blockThreads: number };

const H200: Caps = { multiprocessors: 132, maxCluster: 8, blockThreads: 256 };
const A100: Caps = { multiprocessors: 108, maxCluster: 1, blockThreads: 256 };
const EMULATION: Caps = { multiprocessors: 2, maxCluster: 4, blockThreads: 64 };
const MIN_ROWS_PER_SLOT = 48; // PlanTuning::min_rows_per_slot
const SLOTS_PER_GROUP = 16; // PlanTuning::slots_per_group

/** A weight of PyTorch shape `shape` read at dim 0, as the benchmark networks are. */
function dim0(shape: number[], hasOut = true): Shape {
  const rows = shape[0];
  const inner = shape.slice(1).reduce((a, b) => a * b, 1);
  return { outer: 1, rows, inner, vectorNorm: shape.length === 1, hasOut };
}

/** Plans the layers and checks every invariant the kernels rely on; returns the plan. */
function checkPlan(layers: Shape[], elementBytes: number, iterated: boolean, caps: Caps): CudaBatchPlan {
  const plan = addon!.internal.planCudaBatch(layers, elementBytes, iterated, caps);
  const unit = 16 / elementBytes;
  assert.equal(plan.layers.length, layers.length);

  // Launches partition the sweep items, and each cluster is aligned to its launch.
  let next = 0;
  const launchOf: number[] = [];
  plan.launches.forEach((launch, k) => {
    assert.equal(launch.begin, next, 'launches partition the sweep items in order');
    assert.ok(launch.count > 0);
    assert.equal(launch.count % launch.cluster, 0, 'a launch holds whole clusters');
    assert.ok(launch.cluster >= 1 && launch.cluster <= caps.maxCluster);
    for (let i = launch.begin; i < launch.begin + launch.count; i++) {
      launchOf[i] = k;
      assert.equal(plan.sweep[i].tile, (i - launch.begin) % launch.cluster, 'tile k of a cluster is its rank k');
    }
    next += launch.count;
  });
  assert.equal(next, plan.sweep.length);
  assert.equal(plan.launches.filter((l) => l.kind === 'general').length <= 1, true, 'at most one general launch');

  const doubleRanges: [number, number][] = [];
  layers.forEach((L, i) => {
    const p = plan.layers[i];
    const cols = L.outer * L.inner;
    const sweep = plan.sweep.map((s, k) => ({ ...s, launch: plan.launches[launchOf[k]] })).filter((s) => s.layer === i);
    // A tiled layer may run in a launch with a larger cluster (its extra ranks own no columns) or more units.
    const cluster = sweep[0].launch.cluster;
    assert.equal(sweep.length, p.slots * cluster, `layer ${i}: one sweep block per slot and cluster rank`);
    for (const s of sweep) {
      assert.equal(s.launch.kind, p.kind, `layer ${i}: in a launch of its kind`);
      assert.equal(s.launch.cluster, cluster, `layer ${i}: all in one launch`);
      if (p.kind === 'tiled') {
        assert.ok(cluster >= p.tiles, `layer ${i}: clusters of at least its tile count`);
        assert.ok(s.launch.units >= p.units, `layer ${i}: at least its units per thread`);
      } else {
        assert.equal(cluster, 1);
      }
      if (s.launch.vectorLoads)
        assert.ok(p.kind === 'tiled' && cols % unit === 0 && L.vectorLoads !== false, `layer ${i}: 16-byte loads only where aligned`);
    }
    if (L.vectorNorm) {
      assert.equal(p.kind, 'general');
      assert.equal(sweep.length, 1, `layer ${i}: a 1-D weight is one block`);
      assert.equal(p.chunks, 0);
    } else {
      // Slots tile [0, rows) in order, none empty, each slot's tiles together.
      let row = 0;
      for (let k = 0; k < p.slots; k++) {
        const slot = sweep.slice(k * cluster, (k + 1) * cluster);
        slot.forEach((s, t) => {
          assert.equal(s.slot, k);
          assert.equal(s.tile, t);
          assert.equal(s.begin, row, `layer ${i}: row ranges are contiguous`);
          assert.equal(s.end, slot[0].end);
        });
        assert.ok(slot[0].end > slot[0].begin, `layer ${i}: no empty row range`);
        row = slot[0].end;
      }
      assert.equal(row, L.rows, `layer ${i}: every row is swept`);
      // A slot's partial is written once and read back: a small fraction of the rows it sums.
      assert.ok(p.slots <= Math.max(1, Math.floor(L.rows / MIN_ROWS_PER_SLOT)), `layer ${i}: ${p.slots} slots for ${L.rows} rows`);
      if (p.kind === 'tiled') {
        assert.equal(L.outer, 1, `layer ${i}: strided rows take the general sweep`);
        assert.ok([1, 2, 4].includes(p.units));
        assert.equal(p.tileColumns % unit, 0, `layer ${i}: tiles split at 16-byte units`);
        assert.ok(p.tileColumns <= caps.blockThreads * p.units * unit, `layer ${i}: a tile fits its block's registers`);
        assert.ok(
          p.tiles * p.tileColumns >= cols && (p.tiles - 1) * p.tileColumns < cols,
          `layer ${i}: tiles cover the columns, none empty`,
        );
        assert.ok(p.tiles <= caps.maxCluster);
      } else {
        assert.equal(p.tiles, 1);
      }
      // Level 1 sums groups of slots; level 2 (the finish) tiles the columns.
      assert.equal(p.groups, p.slots > SLOTS_PER_GROUP ? Math.ceil(p.slots / SLOTS_PER_GROUP) : 0);
      const reduce = plan.reduce.filter((r) => r.layer === i);
      for (let g = 0; g < p.groups; g++) {
        let col = 0;
        for (const r of reduce.filter((x) => x.group === g)) {
          assert.equal(r.begin, col);
          assert.ok(r.end > r.begin);
          col = r.end;
        }
        assert.equal(col, cols, `layer ${i}: group ${g} sums every column`);
      }
      assert.equal(reduce.length === 0, p.groups === 0);
      let col = 0;
      const finish = plan.finish.filter((f) => f.layer === i);
      assert.equal(finish.length, p.chunks);
      finish.forEach((f, k) => {
        assert.equal(f.chunk, k);
        assert.equal(f.begin, col);
        assert.ok(f.end > f.begin);
        col = f.end;
      });
      assert.equal(col, cols, `layer ${i}: every column of t is summed`);
      assert.equal(p.dOffset, p.xOffset + cols);
      assert.equal(p.tOffset, p.dOffset + L.rows);
      assert.equal(p.partialOffset, p.tOffset + cols);
      assert.equal(p.slotStatsOffset, p.partialOffset + p.slots * cols);
      assert.equal(p.chunkStatsOffset, p.slotStatsOffset + p.slots);
      doubleRanges.push([p.xOffset, p.chunkStatsOffset + p.chunks]);
    }
    const commits = plan.commit.filter((c) => c.layer === i);
    assert.equal(
      commits.filter((c) => c.kind === CommitKind.Vectors).length,
      iterated && !L.vectorNorm ? 1 : 0,
      `layer ${i}: u, v committed once`,
    );
    const divisions = commits.filter((c) => c.kind === CommitKind.Divide);
    if (!L.hasOut) {
      assert.equal(divisions.length, 0);
    } else {
      let e = 0;
      for (const c of divisions) {
        assert.equal(c.begin, e);
        assert.equal(c.begin % unit, 0, 'division items start on a 16-byte unit');
        assert.ok(c.end > c.begin);
        e = c.end;
      }
      assert.equal(e, L.outer * L.rows * L.inner, `layer ${i}: every element is divided`);
    }
  });
  const sorted = [...doubleRanges].sort((a, b) => a[0] - b[0]);
  sorted.forEach(([b, e], k) => {
    assert.ok(e <= plan.doubles, 'scratch stays inside the arena');
    if (k > 0) assert.ok(b >= sorted[k - 1][1], 'scratch ranges of layers do not overlap');
  });
  assert.ok(
    plan.commit.slice(0, plan.vectorItems).every((c) => c.kind === CommitKind.Vectors),
    'vector items first',
  );
  assert.ok(plan.commit.slice(plan.vectorItems).every((c) => c.kind === CommitKind.Divide));
  const divides = plan.commit.length - plan.vectorItems;
  assert.equal(plan.divideBlocks, Math.min(divides, caps.multiprocessors * 8), 'the division strides over a fixed grid');
  // A layer's geometry depends on its own shape alone, so it gets the same bits alone or in any batch.
  layers.forEach((L, i) => {
    const alone = addon!.internal.planCudaBatch([L], elementBytes, iterated, caps).layers[0];
    const p = plan.layers[i];
    for (const key of ['kind', 'slots', 'tiles', 'tileColumns', 'units', 'groups', 'chunks'] as const) {
      assert.equal(alone[key], p[key], `layer ${i}: ${key} alone`);
    }
  });
  return plan;
}

/** Sweep blocks per multiprocessor. */
function perSm(plan: CudaBatchPlan, caps: Caps): number {
  return plan.sweep.length / caps.multiprocessors;
}

describe('cuda batch planner (host side, no GPU needed)', () => {
  before(function () {
    if (!addon) this.skip();
  });

  it('awkward shapes: 1×1, 1×n, n×1, primes, 31×33, 1000×3, every dim of a 4-D weight, 1-D weights, unaligned', () => {
    const shapes: Shape[] = [
      { outer: 1, rows: 1, inner: 1, vectorNorm: false, hasOut: true },
      { outer: 1, rows: 1, inner: 997, vectorNorm: false, hasOut: true },
      { outer: 1, rows: 997, inner: 1, vectorNorm: false, hasOut: false },
      { outer: 1, rows: 31, inner: 33, vectorNorm: false, hasOut: true },
      { outer: 1, rows: 1000, inner: 3, vectorNorm: false, hasOut: true },
      { outer: 1, rows: 6, inner: 5 * 3 * 3, vectorNorm: false, hasOut: true },
      { outer: 6, rows: 5, inner: 9, vectorNorm: false, hasOut: true },
      { outer: 30, rows: 3, inner: 3, vectorNorm: false, hasOut: true },
      { outer: 90, rows: 3, inner: 1, vectorNorm: false, hasOut: true },
      { outer: 1, rows: 17, inner: 1, vectorNorm: true, hasOut: true },
      { outer: 1, rows: 64, inner: 576, vectorNorm: false, hasOut: true, vectorLoads: false },
      { outer: 1, rows: 200, inner: 100000, vectorNorm: false, hasOut: true },
    ];
    for (const caps of [H200, A100, EMULATION]) {
      for (const bytes of [4, 8]) for (const iterated of [true, false]) checkPlan(shapes, bytes, iterated, caps);
    }
  });

  it('random batches of many small and a few large layers', () => {
    for (let trial = 0; trial < 30; trial++) {
      const layers: Shape[] = Array.from({ length: randomInt(1, 60) }, () => {
        const big = randomInt(0, 9) === 0;
        return {
          outer: randomInt(0, 3) === 0 ? randomInt(1, 12) : 1,
          rows: big ? randomInt(500, 3000) : randomInt(1, 70),
          inner: big ? randomInt(500, 40000) : randomInt(1, 70),
          vectorNorm: randomInt(0, 9) === 0,
          hasOut: randomInt(0, 4) !== 0,
          vectorLoads: randomInt(0, 3) !== 0,
        };
      });
      const caps = [H200, A100, EMULATION][randomInt(0, 2)];
      checkPlan(layers, randomInt(0, 1) ? 4 : 8, randomInt(0, 3) !== 0, caps);
    }
  });

  it('an 8192×8192 layer on 132 SMs: at least 4 tiled blocks per SM, two 16-byte units a thread, two-level reduction', () => {
    const plan = checkPlan([dim0([8192, 8192])], 4, true, H200);
    const layer = plan.layers[0];
    assert.equal(layer.kind, 'tiled');
    assert.ok(perSm(plan, H200) >= 4, `${plan.sweep.length} sweep blocks: ${perSm(plan, H200).toFixed(2)} per SM`);
    assert.ok(layer.units <= 2, `${layer.units} units a thread: registers for 4 blocks per SM`);
    assert.ok(layer.tiles > 1, 'the columns are shared by a cluster');
    assert.ok(layer.groups > 1, 'the slots are reduced in two levels');
    assert.ok(plan.finish.length >= 16, `${plan.finish.length} finish blocks`);
    // The partials, written once per slot (and read back by the reduction, from L2 mostly), stay a few percent of
    // the weight's bytes.
    const partialBytes = layer.slots * 8192 * 8;
    assert.ok(partialBytes <= 0.05 * 8192 * 8192 * 4, `partials write ${partialBytes} bytes`);
    assert.ok(plan.divideBlocks >= H200.multiprocessors, 'the division strides over the whole device');
  });

  it('without clusters (A100) an 8192-column layer takes the general sweep; 4096 columns still tile', () => {
    assert.equal(checkPlan([dim0([8192, 8192])], 4, true, A100).layers[0].kind, 'general');
    const plan = checkPlan([dim0([4096, 4096])], 4, true, A100);
    assert.equal(plan.layers[0].kind, 'tiled');
    assert.equal(plan.layers[0].tiles, 1);
    assert.ok(perSm(plan, A100) >= 0.75, `${plan.sweep.length} sweep blocks on ${A100.multiprocessors} SMs`);
  });

  it("BigGAN-128-D's layers fill the GPU: every layer tiled, the three largest each over every SM, the batch 4+ blocks per SM", () => {
    const net = networks().find((n) => n.name === 'biggan-128-d')!;
    const layers = net.shapes.map((s) => dim0(s));
    const plan = checkPlan(layers, 4, true, H200);
    assert.ok(perSm(plan, H200) >= 4, `${plan.sweep.length} sweep blocks: ${perSm(plan, H200).toFixed(2)} per SM`);
    layers.forEach((L, i) => {
      if (L.vectorNorm) return;
      assert.equal(plan.layers[i].kind, 'tiled', `layer ${i} (${net.shapes[i].join('×')}) is tiled`);
      if (L.rows * L.inner >= 2e7) {
        const blocks = plan.sweep.filter((s) => s.layer === i).length;
        assert.ok(blocks >= H200.multiprocessors, `layer ${i} (${net.shapes[i].join('×')}): ${blocks} blocks`);
      }
    });
  });

  for (const name of ['sngan-resnet-cifar10-d', 'sngan-cnn-cifar10-d']) {
    it(`${name}: the plan stays on the latency path (one wave, one reduction level, few launches)`, () => {
      const net = networks().find((n) => n.name === name)!;
      const plan = checkPlan(
        net.shapes.map((s) => dim0(s)),
        4,
        true,
        H200,
      );
      assert.equal(plan.reduce.length, 0, 'no level-1 reduction: the finish sums the slots directly');
      assert.ok(plan.sweep.length <= 4 * H200.multiprocessors, `${plan.sweep.length} sweep blocks: one wave`);
      assert.ok(plan.finish.length <= 4 * H200.multiprocessors, `${plan.finish.length} finish blocks: one wave`);
      assert.ok(plan.launches.length <= 2, `${plan.launches.length} sweep launches per iteration: the tiled layers share one`);
    });
  }

  it('many-small (256 layers of 64×576): one block per layer, one wave, no level-1 reduction', () => {
    const w = synthetic('many-small');
    const plan = checkPlan(
      w.shapes.map((s) => dim0(s)),
      4,
      true,
      H200,
    );
    assert.equal(plan.sweep.length, w.shapes.length);
    assert.ok(plan.sweep.length <= 4 * H200.multiprocessors);
    assert.equal(plan.reduce.length, 0);
    assert.equal(plan.launches.length, 1);
  });

  it('float64 weights: half the columns per 16-byte unit, so wider layers need more tiles or the general sweep', () => {
    const plan = checkPlan([dim0([4096, 4096]), dim0([2048, 40000])], 8, true, H200);
    assert.equal(plan.layers[0].kind, 'tiled');
    assert.equal(plan.layers[1].kind, 'general', '40000 float64 columns exceed 8 blocks of 256 threads × 4 units × 2');
  });
});
