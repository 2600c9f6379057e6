// A stand-in for VS Code's extension host, enough to run editors/vscode/extension.js with the
// real vscode-languageclient: the `vscode` module the extension and the client require is
// this one. It opens a spec, waits for the diagnostics the client hands VS Code, then asks
// the providers the client registered (inlay hints, hover, completion, definition) as VS Code
// would, and prints what came back as JSON.
//
//   node vscode_host.js EXTENSION_DIR PYTHON SPEC...
"use strict";

const Module = require("module");
const path = require("path");
const fs = require("fs");
const url = require("url");

const [extensionDir, python, ...specs] = process.argv.slice(2);

class Disposable {
  constructor(fn) { this.fn = fn; }
  static from(...items) { return new Disposable(() => items.forEach((i) => i && i.dispose && i.dispose())); }
  dispose() { if (this.fn) this.fn(); this.fn = undefined; }
}

class EventEmitter {
  constructor() {
    this.listeners = [];
    this.event = (listener, thisArg) => {
      const bound = listener.bind(thisArg);
      this.listeners.push(bound);
      return new Disposable(() => { this.listeners = this.listeners.filter((l) => l !== bound); });
    };
  }
  fire(value) { this.listeners.slice().forEach((l) => l(value)); }
  dispose() { this.listeners = []; }
}

class Uri {
  constructor(scheme, fsPath) { this.scheme = scheme; this.fsPath = fsPath; this.path = fsPath; }
  static file(p) { return new Uri("file", p); }
  static parse(text) { return text.startsWith("file:") ? new Uri("file", url.fileURLToPath(text)) : new Uri(text.split(":")[0], text); }
  toString() { return this.scheme === "file" ? url.pathToFileURL(this.fsPath).href : this.fsPath; }
  toJSON() { return this.toString(); }
  with() { return this; }
}

class Position {
  constructor(line, character) { this.line = line; this.character = character; }
}

class Range {
  constructor(a, b, c, d) {
    if (typeof a === "number") { this.start = new Position(a, b); this.end = new Position(c, d); }
    else { this.start = a; this.end = b; }
  }
}

class Location { constructor(uri, range) { this.uri = uri; this.range = range; } }
class Diagnostic { constructor(range, message, severity) { Object.assign(this, { range, message, severity }); } }
class Hover { constructor(contents, range) { this.contents = Array.isArray(contents) ? contents : [contents]; this.range = range; } }
class InlayHint { constructor(position, label, kind) { Object.assign(this, { position, label, kind }); } }
class CompletionItem { constructor(label, kind) { Object.assign(this, { label, kind }); } }
class CompletionList { constructor(items, isIncomplete) { Object.assign(this, { items, isIncomplete }); } }
class MarkdownString {
  constructor(value) { this.value = value || ""; }
  appendMarkdown(text) { this.value += text; return this; }
  appendCodeblock(code, language) { this.value += "```" + (language || "") + "\n" + code + "\n```\n"; return this; }
}

// every other class or enum the client names: a plain record of what it was given
const generic = (name) => class { constructor(...args) { this.kind = name; this.args = args; } };
const enumeration = () => new Proxy({}, { get: (_, key) => (typeof key === "string" ? key : undefined) });

const collections = [];
const providers = {};
const configuration = {
  command: [python, "-m", "compiler", "lsp"],
  debounce: 0,
};

const workspaceEvents = {
  open: new EventEmitter(), close: new EventEmitter(), change: new EventEmitter(),
  save: new EventEmitter(), willSave: new EventEmitter(), config: new EventEmitter(),
  folders: new EventEmitter(),
};

const vscode = {
  version: "1.95.0",
  Disposable, EventEmitter, Uri, Position, Range, Location, Diagnostic, Hover, InlayHint,
  CompletionItem, CompletionList, MarkdownString,
  CancellationError: class extends Error {},
  CancellationTokenSource: class {
    constructor() { this.token = { isCancellationRequested: false, onCancellationRequested: () => new Disposable() }; }
    cancel() { this.token.isCancellationRequested = true; }
    dispose() {}
  },
  DiagnosticSeverity: { Error: 0, Warning: 1, Information: 2, Hint: 3 },
  workspace: {
    workspaceFolders: [{ uri: Uri.file(path.dirname(specs[0])), name: "specs", index: 0 }],
    textDocuments: [],
    getConfiguration: (section) => ({
      get: (key, fallback) => (section === "yarch" && key in configuration ? configuration[key] : fallback),
      has: () => false,
    }),
    onDidOpenTextDocument: workspaceEvents.open.event,
    onDidCloseTextDocument: workspaceEvents.close.event,
    onDidChangeTextDocument: workspaceEvents.change.event,
    onDidSaveTextDocument: workspaceEvents.save.event,
    onWillSaveTextDocument: workspaceEvents.willSave.event,
    onDidChangeConfiguration: workspaceEvents.config.event,
    onDidChangeWorkspaceFolders: workspaceEvents.folders.event,
    createFileSystemWatcher: () => ({ onDidCreate: () => new Disposable(), onDidChange: () => new Disposable(), onDidDelete: () => new Disposable(), dispose() {} }),
    applyEdit: async () => true,
  },
  window: {
    createOutputChannel: (name) => ({ name, append: (t) => process.stderr.write(t), appendLine: (t) => process.stderr.write(t + "\n"), replace() {}, clear() {}, show() {}, hide() {}, dispose() {} }),
    showErrorMessage: async (...args) => { console.error("error message:", args[0]); },
    showWarningMessage: async () => undefined,
    showInformationMessage: async () => undefined,
    activeTextEditor: undefined,
    onDidChangeActiveTextEditor: new EventEmitter().event,
    tabGroups: { all: [], onDidChangeTabs: new EventEmitter().event },
    withProgress: async (_, task) => task({ report() {} }, new vscode.CancellationTokenSource().token),
    showTextDocument: async () => undefined,
  },
  languages: {
    match: (selector, document) => {
      const filters = Array.isArray(selector) ? selector : [selector];
      return filters.some((f) => (typeof f === "string" ? f === document.languageId
        : (!f.language || f.language === document.languageId) && (!f.scheme || f.scheme === document.uri.scheme))) ? 10 : 0;
    },
    createDiagnosticCollection: (name) => {
      const entries = new Map();
      const collection = {
        name,
        set(uri, diagnostics) {
          if (uri instanceof Uri) entries.set(uri.toString(), diagnostics || []);
          else for (const [u, d] of uri) entries.set(u.toString(), d || []);
        },
        get: (uri) => entries.get(uri.toString()),
        delete: (uri) => entries.delete(uri.toString()),
        clear: () => entries.clear(),
        forEach: (fn) => entries.forEach((d, u) => fn(Uri.parse(u), d, collection)),
        has: (uri) => entries.has(uri.toString()),
        dispose() {},
        entries,
      };
      collections.push(collection);
      return collection;
    },
  },
  commands: { registerCommand: () => new Disposable(), executeCommand: async () => undefined },
  env: { language: "en", appName: "yarch test host", openExternal: async () => true },
  ProgressLocation: { Window: 10 },
};
// `registerHoverProvider(selector, provider, ...)` and its kin keep the provider, to be asked
for (const feature of ["Hover", "InlayHints", "CompletionItem", "Definition", "DocumentSymbol", "CodeActions",
  "SignatureHelp", "WorkspaceSymbol", "TypeHierarchy", "TypeDefinition", "SelectionRange", "Rename", "Reference",
  "OnTypeFormattingEdit", "InlineValues", "InlineCompletionItem", "Implementation", "FoldingRange",
  "DocumentRangeFormattingEdit", "DocumentLink", "DocumentHighlight", "DocumentFormattingEdit", "Declaration",
  "Color", "CodeLens", "CallHierarchy", "LinkedEditingRange", "DocumentSemanticTokens", "DocumentRangeSemanticTokens"]) {
  vscode.languages[`register${feature}Provider`] = (selector, provider) => {
    providers[feature] = provider;
    return new Disposable();
  };
}
const known = new Set(Object.keys(vscode));
const host = new Proxy(vscode, {
  get(target, key) {
    if (typeof key !== "string" || known.has(key) || key in target) return target[key];
    // a kind (`SymbolKind.Class`) or a class the client builds and the test does not read
    target[key] = /Kind$|Tag$|Reason$|Type$|Mode$|Severity$|Level$|Status$|Target$|Behavior$/.test(key) ? enumeration() : generic(key);
    return target[key];
  },
});

const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  return request === "vscode" ? "vscode" : resolve.call(this, request, ...rest);
};
require.cache.vscode = { id: "vscode", filename: "vscode", loaded: true, exports: host };

function textDocument(file, text, version) {
  const lines = text.split("\n");
  return {
    uri: Uri.file(file), fileName: file, languageId: "yaml", version, isClosed: false, isDirty: false, isUntitled: false,
    lineCount: lines.length, eol: 1,
    getText: () => text,
    lineAt: (line) => ({ text: lines[typeof line === "number" ? line : line.line], lineNumber: line }),
    offsetAt: (p) => lines.slice(0, p.line).reduce((n, l) => n + l.length + 1, 0) + p.character,
    positionAt: (offset) => {
      let line = 0;
      while (line < lines.length - 1 && offset > lines[line].length) { offset -= lines[line].length + 1; line += 1; }
      return new Position(line, offset);
    },
    getWordRangeAtPosition: () => undefined,
    validateRange: (r) => r, validatePosition: (p) => p,
    save: async () => true,
  };
}

async function waitFor(check, what, seconds = 30) {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const found = check();
    if (found) return found;
    if (Date.now() > end) throw new Error(`no ${what} within ${seconds} s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const label = (hint) => (typeof hint.label === "string" ? hint.label : hint.label.map((p) => p.value).join(""));
const markdown = (hover) => hover.contents.map((c) => (typeof c === "string" ? c : c.value)).join("\n");
const token = new vscode.CancellationTokenSource().token;

async function ask(specPath) {
  const text = fs.readFileSync(specPath, "utf8");
  const document = textDocument(specPath, text, 1);
  vscode.workspace.textDocuments.push(document);
  workspaceEvents.open.fire(document);
  const key = document.uri.toString();
  const diagnostics = await waitFor(() => collections.map((c) => c.entries.get(key)).find((d) => d), "diagnostics");
  const lines = text.split("\n");
  const whole = new Range(0, 0, lines.length, 0);
  const hints = await providers.InlayHints.provideInlayHints(document, whole, token);
  const conv = lines.findIndex((l) => l.includes("- conv:"));
  const hover = await providers.Hover.provideHover(document, new Position(conv, lines[conv].indexOf("conv") + 1), token);
  const items = await providers.CompletionItem.provideCompletionItems(document, new Position(conv, lines[conv].indexOf("conv")), token, { triggerKind: 0 });
  const list = Array.isArray(items) ? items : items.items;
  return {
    diagnostics: diagnostics.map((d) => ({
      line: d.range.start.line, character: d.range.start.character, message: d.message, severity: d.severity,
      code: typeof d.code === "object" ? d.code.value : d.code,
    })),
    hints: hints.map((h) => ({ line: h.position.line, character: h.position.character, label: label(h) })),
    hover: hover ? markdown(hover) : null,
    completion: list.map((i) => (typeof i.label === "string" ? i.label : i.label.label)),
  };
}

async function main() {
  const extension = require(path.resolve(extensionDir, "extension.js"));
  const context = { subscriptions: [], extensionPath: extensionDir, asAbsolutePath: (p) => path.join(extensionDir, p) };
  await extension.activate(context);
  const results = {};
  for (const spec of specs) results[spec] = await ask(spec);
  process.stdout.write(JSON.stringify(results) + "\n");
  await extension.deactivate();
  process.exit(0);
}

main().catch((error) => { console.error(error && error.stack ? error.stack : error); process.exit(1); });
