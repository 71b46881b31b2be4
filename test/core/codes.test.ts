// One vocabulary in two languages: the addon's internal.codes (native/common/codes.h) and lib/codes.ts hold the same
// names with the same values, each way round.
import * as assert from 'node:assert/strict';

import { backendInfo, nativeAddon } from '../../lib/backends';
import { CommitKind, ErrorCode, LayerStatus } from '../../lib/codes';

describe('codes: C++ and TypeScript agree', function () {
  const addon = nativeAddon();
  before(function () {
    if (!addon) {
      console.log(`      skipped: ${backendInfo().cpu.reason}`);
      this.skip();
    }
  });

  const pairs = [
    ['layerStatus', LayerStatus],
    ['commitKind', CommitKind],
    ['errorCode', ErrorCode],
  ] as const;
  for (const [name, ts] of pairs) {
    it(`${name}: every name on both sides, with the same value`, () => {
      const cpp: Record<string, number | string> = addon!.internal.codes[name];
      assert.deepStrictEqual(Object.keys(cpp).sort(), Object.keys(ts).sort());
      assert.deepStrictEqual(cpp, { ...ts });
    });
  }
});
