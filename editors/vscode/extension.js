// The yarch extension for VS Code: starts `yarch lsp` for YAML files. The server lints only
// the ones that are specs (with a `layers`, `blocks` or `extends` key), as `yarch lint` does
// in a folder, so other YAML (CI workflows, manifests) is left alone.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

// `${workspaceFolder}` in the command, as in VS Code's own settings
function expand(text, folder) {
  return folder ? text.split("${workspaceFolder}").join(folder) : text;
}

// `yarch.command`: a list (the program and its arguments), or the program alone
function commandLine(setting) {
  if (typeof setting === "string" && setting.trim()) return [setting.trim(), "lsp"];
  if (Array.isArray(setting) && setting.length && setting.every((part) => typeof part === "string")) return setting;
  return ["yarch", "lsp"];
}

function serverOptions(config, folder) {
  const [command, ...args] = commandLine(config.get("command")).map((part) => expand(part, folder));
  return { command, args, transport: TransportKind.stdio };
}

function clientOptions(config) {
  return {
    documentSelector: [{ scheme: "file", language: "yaml" }],
    initializationOptions: { debounce: config.get("debounce", 0.15) },
  };
}

async function activate(context) {
  const config = vscode.workspace.getConfiguration("yarch");
  const folders = vscode.workspace.workspaceFolders;
  const folder = folders && folders.length ? folders[0].uri.fsPath : undefined;
  client = new LanguageClient("yarch", "yarch", serverOptions(config, folder), clientOptions(config));
  context.subscriptions.push(client);
  await client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate, serverOptions, clientOptions, commandLine };
