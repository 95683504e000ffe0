/**
 * The command line as the user meets it, around @effect/cli: an unknown command is refused with the nearest one
 * ("did you mean `generate`?", exit 2, `flexidb help <unknown>` too); help names the program in its usage line
 * (`flexidb migrate dev …`, where @effect/cli writes `$ dev …`) and shows the `-- <prisma flags>` pass-through of
 * the commands that run Prisma; and nothing carries ANSI escapes unless it goes to a terminal and NO_COLOR is unset.
 */
import type { Command } from "@effect/cli"
import { HelpDoc } from "@effect/cli"
import { redact } from "../src/index.js"
import type { Io } from "./io.js"

/** A command and the commands under it, by name. */
export interface CommandTree {
  readonly name: string
  /** Its description, as plain text on one line ("" when it has none). */
  readonly description: string
  readonly children: ReadonlyMap<string, CommandTree>
}

/** @effect/cli's descriptor, as far as the tree needs it: a command, a mapped command, or one with subcommands. */
type Node =
  | { readonly _tag: "Standard" | "GetUserInput"; readonly name: string; readonly description?: HelpDoc.HelpDoc }
  | { readonly _tag: "Map"; readonly command: Node }
  | { readonly _tag: "Subcommands"; readonly parent: Node; readonly children: ReadonlyArray<Node> }

const treeOf = (node: Node): CommandTree => {
  switch (node._tag) {
    case "Map":
      return treeOf(node.command)
    case "Subcommands": {
      const parent = treeOf(node.parent)
      return { ...parent, children: new Map(node.children.map(treeOf).map((child) => [child.name, child])) }
    }
    default:
      return { name: node.name, description: plain(node.description), children: new Map() }
  }
}

/** A HelpDoc as one line of plain text. */
const plain = (doc: HelpDoc.HelpDoc | undefined): string =>
  doc === undefined || HelpDoc.isEmpty(doc)
    ? ""
    : HelpDoc.toAnsiText(doc).replace(/\x1b\[[0-9;]*m/g, "").replace(/\s+/g, " ").trim()

/** The widest line of flexidb's own short help. */
export const HELP_WIDTH = 100

/**
 * What `flexidb` with no command prints: the usage line and every command on one line each (its own summary, else
 * its description's first sentence, cut to fit), within HELP_WIDTH columns. Commands added to the program appear
 * here by themselves.
 */
export const shortHelp = (tree: CommandTree, summaries: Readonly<Record<string, string>>, version: string): Array<string> => {
  const fit = (line: string) => (line.length > HELP_WIDTH ? `${line.slice(0, HELP_WIDTH - 1)}…` : line)
  const names = [...tree.children.keys()]
  const width = Math.max(...names.map((n) => n.length))
  const summary = (child: CommandTree) => {
    const own = summaries[child.name]
    if (own !== undefined) return own
    const first = /^.*?[.:;](?=\s|$)/.exec(child.description)?.[0]?.replace(/[.:;]$/, "") ?? child.description
    const subcommands = [...child.children.keys()]
    return subcommands.length > 0 ? `${subcommands.join(" | ")}: ${first}` : first
  }
  return [
    `flexidb ${version}: Prisma's commands for every schema in prisma/schemas/, each on its own database`,
    ``,
    `Usage: flexidb <command> [--schema <name>] [--json] [flags] [-- <prisma flags>]`,
    ``,
    `Commands:`,
    ...names.map((name) => fit(`  ${name.padEnd(width)}  ${summary(tree.children.get(name)!)}`)),
    ``,
    `flexidb <command> --help: its flags.  flexidb --version.  All of it: the README's "The CLI".`
  ].map(fit)
}

/** The commands a program has, read from its @effect/cli command. */
export const commandTree = <Name extends string>(command: Command.Command<Name, any, any, any>): CommandTree =>
  treeOf(command.descriptor as unknown as Node)

/**
 * The commands that run Prisma, with the Prisma command each hands the arguments after `--` to. Their help shows
 * the pass-through.
 */
export const prismaCommands: ReadonlyMap<string, string> = new Map([
  ["generate", "prisma generate"],
  ["validate", "prisma validate"],
  ["format", "prisma format"],
  ["migrate dev", "prisma migrate dev"],
  ["migrate deploy", "prisma migrate deploy"],
  ["migrate reset", "prisma migrate reset"],
  ["migrate status", "prisma migrate status"],
  ["migrate resolve", "prisma migrate resolve"],
  ["diff", "prisma migrate diff"],
  ["db push", "prisma db push"],
  ["db pull", "prisma db pull"],
  ["studio", "prisma studio"]
])

/** Edits needed to turn `a` into `b`, a swap of two neighbours counting one (optimal string alignment). */
const distance = (a: string, b: string): number => {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1)
    }
  }
  return d[a.length]![b.length]!
}

/** The command the user most likely meant: a near spelling (at most 2 edits, fewer for short words), or a prefix. */
export const nearest = (word: string, names: Iterable<string>): string | undefined => {
  const given = word.toLowerCase()
  const scored = [...names]
    .map((name) => ({ name, d: distance(given, name) }))
    .filter(({ name, d }) => d <= Math.min(2, Math.floor(Math.max(given.length, name.length) / 3)) || (given.length >= 3 && name.startsWith(given)))
    .sort((x, y) => x.d - y.d)
  return scored[0]?.name
}

/** How a command is named to the user: `flexidb migrate dev`. */
export const commandName = (tree: CommandTree, path: ReadonlyArray<string>) => [tree.name, ...path].join(" ")

export interface CommandLine {
  /** The commands named, from the program's down: `["migrate", "dev"]`. */
  readonly path: ReadonlyArray<string>
  /** Help is asked for: `help …`, `--help`, `-h`, or nothing at all. */
  readonly help: boolean
  /** What is wrong with the commands named, for stderr; the run ends with exit 2. */
  readonly problem?: string
}

/**
 * Reads the commands at the start of `argv` (the arguments before `--`), as far as they are names; the options
 * after them are @effect/cli's to read. A word that is no command where one is expected is the problem.
 */
export const readCommandLine = (tree: CommandTree, argv: ReadonlyArray<string>): CommandLine => {
  const helpWord = argv[0] === "help"
  const words = helpWord ? argv.slice(1) : argv
  const help = helpWord || argv.length === 0 || words.includes("--help") || words.includes("-h")
  const path: Array<string> = []
  let node = tree
  for (const word of words) {
    if (word.startsWith("-") || node.children.size === 0) break
    const child = node.children.get(word)
    if (child === undefined) {
      const here = commandName(tree, path)
      const guess = nearest(word, node.children.keys())
      return {
        path,
        help,
        problem: [
          `${tree.name}: unknown command '${[...path, word].join(" ")}'.` +
          (guess === undefined ? "" : ` Did you mean \`${[...path, guess].join(" ")}\`?`),
          `The commands of ${here}: ${[...node.children.keys()].join(", ")}. Usage: ${here} --help`
        ].join("\n")
      }
    }
    path.push(word)
    node = child
  }
  return { path, help }
}

/** ANSI escape sequences (colours, cursor moves). */
const ansi = /\x1b\[[0-?]*[ -/]*[@-~]/g

/** Whether a stream may carry colour: a terminal, and NO_COLOR unset or empty (https://no-color.org). */
const coloured = (io: Io, stream: "out" | "err") => io.color?.[stream] === true && (io.env.NO_COLOR ?? "") === ""

/**
 * The Io a run writes through: its text plain unless the stream is a terminal that takes colour, and, when help is
 * asked for, the usage line naming the program and the command (`flexidb migrate dev [--schema text] …`) with
 * `[-- <prisma … flags>]` for a command that runs Prisma, without @effect/cli's "A user-defined piece of text." and,
 * for a command that runs no Prisma (`tenants`, `top`, `doctor`…), without the footer about Prisma's flags.
 */
export const presentTo = (io: Io, tree: CommandTree, line: CommandLine): Io => {
  const command = line.path.join(" ")
  const prisma = prismaCommands.get(command)
  const node = line.path.reduce<CommandTree | undefined>((n, name) => n?.children.get(name), tree)
  const named = (text: string) =>
    text.replace(/^(\s*)\$ \S+(.*)$/m, (_, indent: string, rest: string) =>
      `${indent}${commandName(tree, line.path)}${node !== undefined && node.children.size > 0 ? " <command>" : ""}` +
      `${rest}${prisma === undefined ? "" : ` [-- <${prisma} flags>]`}`)
  // The footer about Prisma's flags after --, for the commands (or groups) where some command runs Prisma.
  const runsPrisma = command === "" || [...prismaCommands.keys()].some((c) => c === command || c.startsWith(`${command} `))
  const cleaned = (text: string) =>
    text
      // @effect/cli's words for any text option, above the option's own description: they say nothing.
      .replace(/^[ \t]*A user-defined piece of text\.\n(?:[ \t]*\n)?/gm, "")
      .replace(runsPrisma ? /(?!)/ : /^.*Commands that run Prisma hand it the arguments after -- untouched:.*\n?/m, "")
  const out = (text: string) => redact(line.help ? cleaned(named(text)) : text)
  return {
    ...io,
    out: (text) => io.out(coloured(io, "out") ? out(text) : out(text).replace(ansi, "")),
    // Whatever reaches the user without its credentials: a connection string given as a flag's value included.
    err: (text) => {
      const safe = redact(text)
      io.err(coloured(io, "err") ? safe : safe.replace(ansi, ""))
    }
  }
}
