-- A real third-party client: Neovim (0.7 or later, headless) starts `yarch lsp`, opens a spec,
-- waits for its diagnostics, asks for a hover, and writes what it got to $YARCH_OUT
-- (tests/test_neovim.py). vim.lsp.start_client is Neovim 0.7's API (Debian 12 ships 0.7.2).
local out = vim.env.YARCH_OUT
local cmd = vim.split(vim.env.YARCH_LSP, " ")
local client = vim.lsp.start_client({ name = "yarch", cmd = cmd, root_dir = vim.fn.getcwd() })
vim.cmd("edit " .. vim.env.YARCH_SPEC)
local buf = vim.api.nvim_get_current_buf()
vim.lsp.buf_attach_client(buf, client)
local ok = vim.wait(20000, function() return #vim.diagnostic.get(buf) > 0 end, 50)
local lines = {}
for _, d in ipairs(vim.diagnostic.get(buf)) do
  table.insert(lines, string.format("%d:%d %s %s", d.lnum + 1, d.col + 1, d.severity, d.code or ""))
end
-- a hover, as K asks for it
local params = {
  textDocument = { uri = vim.uri_from_bufnr(buf) },
  position = { line = tonumber(vim.env.YARCH_HOVER_LINE), character = 6 },
}
local res = vim.lsp.buf_request_sync(buf, "textDocument/hover", params, 10000)
for _, r in pairs(res or {}) do
  if r.result and r.result.contents then table.insert(lines, "hover " .. (r.result.contents.value or ""):gsub("\n", " ")) end
end
vim.fn.writefile(lines, out)
vim.lsp.stop_client(client)
vim.cmd("qa!")
