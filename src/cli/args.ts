/** Command-line helpers shared by the CLI subcommands: typed option parsing with messages that name the option. */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { errorMessage } from '../errors';
import { defaultBudgetParams, type BudgetParams } from '../sparsemm/budgets';
import { parseWeightFormat, type WeightFormat } from '../model-io/quantize';

/** A problem with the command line or its input files: reported on stderr with exit code 2. */
export class UsageError extends Error {}

export function integerOption(name: string, text: string | undefined, fallback?: number): number {
  if (text === undefined) {
    if (fallback === undefined) throw new UsageError(`--${name} is required`);
    return fallback;
  }
  const value = Number(text);
  if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(value)) throw new UsageError(`--${name} must be an integer, got "${text}"`);
  return value;
}

export function numberOption(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) throw new UsageError(`--${name} must be a number, got "${text}"`);
  return value;
}

/** --window, --ratio and --scores, read the same way by the budget options and the sweep options (sweep-args.ts). */
export const kvKnobOptions = {
  window: { type: 'string' },
  ratio: { type: 'string' },
  scores: { type: 'string' },
} as const;

/** The KV-budget options `generate` and `budgets` share, as parseArgs declares them. */
export const budgetOptions = {
  policy: { type: 'string' },
  budget: { type: 'string' },
  ...kvKnobOptions,
} as const;

/** The model and what to ask it (--image repeatable), as `generate` and `fidelity` declare them. */
export const modelPromptOptions = {
  model: { type: 'string' },
  image: { type: 'string', multiple: true },
  prompt: { type: 'string' },
} as const;

/** --weights bf16|q8|q4: the weight format a command loads the model in. */
export const weightsOption = { weights: { type: 'string' } } as const;

/** The help line of --weights (each command that loads a model has it). */
export const weightsHelp = `  --weights F         weight format on the GPU: bf16 (default, exact, as in the file), q8 or q4 (the text
                      decoder's projections and lm_head in GGML Q8_0 / Q4_0 blocks of 32, made while loading)
`;

/** --weights as a WeightFormat (bf16 when absent); an unknown name is a UsageError before anything loads. */
export function weightFormatOption(text: string | undefined): WeightFormat {
  if (text === undefined) return 'bf16';
  try {
    return parseWeightFormat(text);
  } catch (error) {
    throw new UsageError(`--weights: ${errorMessage(error)}`);
  }
}

/** --budget, --window and --ratio over the default budget parameters (not yet validated). */
export function budgetParamsOption(values: { budget?: string; window?: string; ratio?: string }): BudgetParams {
  return {
    ...defaultBudgetParams,
    budget: integerOption('budget', values.budget, defaultBudgetParams.budget),
    window: integerOption('window', values.window, defaultBudgetParams.window),
    ratio: numberOption('ratio', values.ratio, defaultBudgetParams.ratio),
  };
}

export function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${what} ${path}: ${errorMessage(error)}`);
  }
}

/**
 * Runs a subcommand's argument parser: prints the help text for --help, and reports a usage error on stderr with
 * exit code 2. Returns the options, or null when there is nothing more to do.
 */
export function parseCommandArgs<T>(command: string, help: string, parse: () => T | 'help'): T | null {
  let options: T | 'help';
  try {
    options = parse();
  } catch (error) {
    process.stderr.write(`${command}: ${errorMessage(error)}\n(see: npm run cli -- ${command} --help)\n`);
    process.exitCode = 2;
    return null;
  }
  if (options === 'help') {
    process.stdout.write(help);
    return null;
  }
  return options;
}

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

/** Every subcommand's --help. */
const helpOption = { help: { type: 'boolean', short: 'h' } } as const;

/**
 * A subcommand's options as parseArgs reads them (strict, --help added): 'help' when asked for, a UsageError for a
 * positional argument (no subcommand takes one).
 */
export function commandOptions<const Options extends OptionsConfig>(args: string[], options: Options) {
  const { values, positionals } = parseArgs({ args, options: { ...options, ...helpOption }, allowPositionals: true, strict: true });
  if ((values as { help?: boolean }).help) return 'help';
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  return values;
}

/** A problem with a subcommand's input or its prompt: `command: message` on stderr and exit code 2. */
export function reportUsageError(command: string, error: unknown): void {
  process.stderr.write(`${command}: ${errorMessage(error)}\n`);
  process.exitCode = 2;
}

/** Reads a subcommand's input files before the model loads: a failure is reported as a usage error and gives null. */
export async function readCommandInputs<T extends object>(command: string, read: () => T | Promise<T>): Promise<T | null> {
  try {
    return await read();
  } catch (error) {
    reportUsageError(command, error);
    return null;
  }
}
