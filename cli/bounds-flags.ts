// report's flags for certified σ (cli/bounds.ts): --conv-input HxW [--stride s] [--padding p|same]
// [--padding-mode zeros|circular] and --certify.
import { type Command, InvalidArgumentError, Option } from 'commander';

import { type BoundsOptions, type PaddingFlag, parseConvInput, parsePadding } from './bounds';
import { UsageError, firstLine } from './errors';

export interface BoundsFlags {
  convInput?: [number, number];
  stride?: number;
  padding?: PaddingFlag;
  paddingMode?: 'zeros' | 'circular';
  certify: boolean;
}

function parsed<T>(parse: (s: string) => T) {
  return (value: string): T => {
    try {
      return parse(value);
    } catch (error) {
      throw new InvalidArgumentError(firstLine(error));
    }
  };
}

const stride = parsed((s) => {
  if (!/^\d+$/.test(s.trim()) || Number(s) < 1) throw new Error(`must be a positive integer, got '${s}'`);
  return Number(s);
});

export function withBoundsFlags(command: Command): Command {
  return command
    .option(
      '--conv-input <HxW>',
      'add the operator σ of every 4-D tensor as a convolution on an input of this size, and its certified upper bound (layout: safetensors and ONNX oihw, TF.js hwio)',
      parsed(parseConvInput),
    )
    .option('--stride <s>', "the convolutions' stride (with --conv-input; default 1)", stride)
    .option(
      '--padding <p|same>',
      "the convolutions' zero or circular padding, or same: (k - 1)/2 for each kernel (with --conv-input; default 0)",
      parsed(parsePadding),
    )
    .addOption(new Option('--padding-mode <mode>', 'with --conv-input (default zeros)').choices(['zeros', 'circular']))
    .option('--certify', 'add certified [lower, upper] bounds on σ for every tensor', false);
}

/** The flags as BoundsOptions; the convolution's own flags need --conv-input. */
export function boundsOptions(flags: BoundsFlags): BoundsOptions {
  if (flags.convInput === undefined) {
    for (const [flag, value] of [
      ['--stride', flags.stride],
      ['--padding', flags.padding],
      ['--padding-mode', flags.paddingMode],
    ] as const) {
      if (value !== undefined) throw new UsageError(`${flag} describes the convolution of --conv-input, which is missing`);
    }
  }
  return {
    convInput: flags.convInput,
    stride: flags.stride,
    padding: flags.padding,
    paddingMode: flags.paddingMode,
    certify: flags.certify,
  };
}
