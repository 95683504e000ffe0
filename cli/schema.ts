/**
 * A Prisma schema reader: tokenizes the whole file (strings with escapes, `//` and block comments, `env("…")`,
 * arrays, function calls) and returns its generator and datasource blocks and the names of its other blocks.
 * Enough of the grammar to find what the CLI needs; anything it cannot read is an error with a line number.
 */
import { Data } from "effect"

export type Value =
  | { readonly kind: "string"; readonly value: string }
  | { readonly kind: "env"; readonly name: string }
  | { readonly kind: "array"; readonly items: ReadonlyArray<Value> }
  | { readonly kind: "other"; readonly text: string }

export interface Block {
  readonly type: string
  readonly name: string
  readonly fields: ReadonlyMap<string, Value>
  readonly line: number
}

export interface Schema {
  readonly generators: ReadonlyArray<Block>
  readonly datasources: ReadonlyArray<Block>
  /** Models, views, enums and composite types, by name. */
  readonly blocks: ReadonlyArray<{ readonly type: string; readonly name: string }>
}

/** A schema the reader cannot read, with the file and line to look at. `parseSchema` throws it. */
export class SchemaParseError extends Data.TaggedError("SchemaParseError")<{
  readonly file: string
  readonly line: number
  readonly reason: string
}> {
  constructor(file: string, line: number, reason: string) {
    super({ file, line, reason })
  }

  override get message() {
    return `${this.file}:${this.line}: ${this.reason}`
  }
}

type Token =
  | { readonly t: "ident"; readonly v: string; readonly line: number }
  | { readonly t: "string"; readonly v: string; readonly line: number }
  | { readonly t: "punct"; readonly v: string; readonly line: number }
  | { readonly t: "newline"; readonly line: number }

const tokenize = (source: string, file: string): Array<Token> => {
  const tokens: Array<Token> = []
  let i = 0
  let line = 1
  while (i < source.length) {
    const c = source[i]!
    if (c === "\n") {
      tokens.push({ t: "newline", line })
      line++
      i++
    } else if (c === " " || c === "\t" || c === "\r") {
      i++
    } else if (c === "/" && source[i + 1] === "/") {
      while (i < source.length && source[i] !== "\n") i++
    } else if (c === "/" && source[i + 1] === "*") {
      const end = source.indexOf("*/", i + 2)
      if (end === -1) throw new SchemaParseError(file, line, "unterminated block comment")
      for (let k = i; k < end; k++) if (source[k] === "\n") line++
      i = end + 2
    } else if (c === '"') {
      let value = ""
      const start = line
      i++
      for (;;) {
        if (i >= source.length || source[i] === "\n") throw new SchemaParseError(file, start, "unterminated string")
        const ch = source[i]!
        if (ch === '"') break
        if (ch === "\\") {
          const next = source[i + 1]
          value += next === "n" ? "\n" : next === "t" ? "\t" : next ?? ""
          i += 2
        } else {
          value += ch
          i++
        }
      }
      i++
      tokens.push({ t: "string", v: value, line: start })
    } else if (/[A-Za-z0-9_@.\-]/.test(c)) {
      let j = i
      while (j < source.length && /[A-Za-z0-9_@.\-]/.test(source[j]!)) j++
      tokens.push({ t: "ident", v: source.slice(i, j), line })
      i = j
    } else if ("{}[]()=,:?".includes(c)) {
      tokens.push({ t: "punct", v: c, line })
      i++
    } else {
      throw new SchemaParseError(file, line, `unexpected character '${c}'`)
    }
  }
  return tokens
}

/** Parses a schema's source. `file` only labels errors. */
export const parseSchema = (source: string, file = "schema.prisma"): Schema => {
  const tokens = tokenize(source, file)
  let p = 0
  const peek = () => tokens[p]
  const skipNewlines = () => {
    while (peek()?.t === "newline") p++
  }
  const isPunct = (v: string) => {
    const tok = tokens[p]
    return tok?.t === "punct" && tok.v === v
  }
  const expect = (t: "ident" | "punct" | "string", v?: string): { readonly v: string; readonly line: number } => {
    const tok = tokens[p]
    if (tok === undefined || tok.t !== t || (v !== undefined && (tok as { v?: string }).v !== v)) {
      const got = tok === undefined ? "end of file" : tok.t === "newline" ? "end of line" : `'${(tok as { v: string }).v}'`
      throw new SchemaParseError(file, tok?.line ?? tokens.at(-1)?.line ?? 1, `expected ${v ?? t}, got ${got}`)
    }
    p++
    return tok as { v: string; line: number }
  }

  const value = (): Value => {
    const tok = peek()
    if (tok?.t === "string") {
      p++
      return { kind: "string", value: tok.v }
    }
    if (tok?.t === "punct" && tok.v === "[") {
      p++
      const items: Array<Value> = []
      skipNewlines()
      while (!(isPunct("]"))) {
        items.push(value())
        skipNewlines()
        if (isPunct(",")) p++
        skipNewlines()
      }
      p++
      return { kind: "array", items }
    }
    if (tok?.t === "ident") {
      p++
      if (isPunct("(")) {
        p++
        const args: Array<Value> = []
        while (!(isPunct(")"))) {
          args.push(value())
          if (isPunct(",")) p++
        }
        p++
        if (tok.v === "env") {
          const [arg] = args
          if (args.length !== 1 || arg?.kind !== "string") {
            throw new SchemaParseError(file, tok.line, `env() takes one string, the variable's name`)
          }
          return { kind: "env", name: arg.value }
        }
        return { kind: "other", text: `${tok.v}(…)` }
      }
      return { kind: "other", text: tok.v }
    }
    throw new SchemaParseError(file, tok?.line ?? 1, "expected a value")
  }

  /** Skips a model/enum/view/type body, balancing braces. */
  const skipBody = (line: number) => {
    let depth = 1
    while (depth > 0) {
      const tok = tokens[p++]
      if (tok === undefined) throw new SchemaParseError(file, line, "unterminated block: missing '}'")
      if (tok.t === "punct" && tok.v === "{") depth++
      if (tok.t === "punct" && tok.v === "}") depth--
    }
  }

  const generators: Array<Block> = []
  const datasources: Array<Block> = []
  const blocks: Array<{ type: string; name: string }> = []
  skipNewlines()
  while (p < tokens.length) {
    const type = expect("ident")
    const name = expect("ident")
    expect("punct", "{")
    if (type.v === "generator" || type.v === "datasource") {
      const fields = new Map<string, Value>()
      for (;;) {
        skipNewlines()
        if (isPunct("}")) {
          p++
          break
        }
        const key = expect("ident")
        expect("punct", "=")
        fields.set(key.v, value())
        if (peek() !== undefined && peek()!.t !== "newline" && !isPunct("}")) {
          throw new SchemaParseError(file, key.line, `expected end of line after ${key.v}`)
        }
      }
      ;(type.v === "generator" ? generators : datasources).push({
        type: type.v,
        name: name.v,
        fields,
        line: type.line
      })
    } else if (["model", "enum", "view", "type"].includes(type.v)) {
      skipBody(type.line)
      blocks.push({ type: type.v, name: name.v })
    } else {
      throw new SchemaParseError(file, type.line, `unknown block '${type.v}' (expected generator, datasource, model, enum, view or type)`)
    }
    skipNewlines()
  }
  return { generators, datasources, blocks }
}

/** A field's string value, if it is a literal string. */
export const stringField = (block: Block, key: string): string | undefined => {
  const v = block.fields.get(key)
  return v?.kind === "string" ? v.value : undefined
}
