-- Runs an Argo CD health script under Lua 5.1 with the globals Argo CD gives it.
--
--   lua5.1 argocd_sandbox.lua PROFILE SCRIPT OBJECT
--
-- OBJECT is a Lua file that returns the resource as a table (the `obj` global). The result is
-- written as "<status>\n<message>"; a script error, or a result Argo CD would reject, exits 1
-- with the reason on stderr.
--
-- Profiles:
--   argocd    what util/lua/lua.go in argoproj/argo-cd opens when useOpenLibs is false:
--             gopher-lua's OpenPackage, OpenBase and OpenTable, the safe os module only
--             through require("os") (OpenSafeOs registers under the name "table", which
--             OpenTable already took, so no `os` global), plus the globals `obj` and
--             `actionParams`. No string library, so strings have no methods either.
--   base      stricter: only gopher-lua's base functions. A script that passes here needs
--             neither the table library nor require.
--   openlibs  Lua 5.1's own standard libraries, as with useOpenLibs: true.

local profile, scriptPath, objectPath = arg[1], arg[2], arg[3]

-- Everything the harness itself needs, taken before the globals are cut down.
local error, ipairs, next, pairs, pcall, type, tostring = error, ipairs, next, pairs, pcall, type, tostring
local loadfile, dofile, setmetatable = loadfile, dofile, setmetatable
local stdout, stderr, exit, clock = io.stdout, io.stderr, os.exit, os.clock
local osTime, osDate = os.time, os.date
local tableFuncs = {
  getn = table.getn, concat = table.concat, insert = table.insert,
  maxn = table.maxn, remove = table.remove, sort = table.sort,
}
local setStringMetatable = debug.setmetatable
local globals = _G

local function fail(message)
  stderr:write(tostring(message), "\n")
  exit(1)
end

if profile ~= "argocd" and profile ~= "base" and profile ~= "openlibs" then
  fail("unknown profile " .. tostring(profile) .. " (argocd, base or openlibs)")
end

local obj = dofile(objectPath)
local script, loadError = loadfile(scriptPath)
if script == nil then
  fail(loadError)
end

-- gopher-lua v1.1's baseFuncs (baselib.go), plus ipairs and pairs that OpenBase adds.
-- "_printregs" is a gopher-lua debugging aid with no Lua 5.1 counterpart.
local baseNames = {
  "assert", "collectgarbage", "dofile", "error", "getfenv", "getmetatable", "load", "loadfile",
  "loadstring", "next", "pcall", "print", "rawequal", "rawget", "rawset", "select", "setfenv",
  "setmetatable", "tonumber", "tostring", "type", "unpack", "xpcall", "module", "require",
  "newproxy", "ipairs", "pairs",
}

if profile ~= "openlibs" then
  local keep = {}
  for _, name in ipairs(baseNames) do
    keep[name] = true
  end
  local names = {}
  for name in pairs(globals) do
    names[#names + 1] = name
  end
  for _, name in ipairs(names) do
    if not keep[name] then
      globals[name] = nil
    end
  end
  globals._G = globals
  globals._VERSION = "Lua 5.1"
  globals._GOPHER_LUA_VERSION = "GopherLua 0.1"
  -- Without the string library, gopher-lua strings have no metatable: ("x"):upper() fails.
  setStringMetatable("", nil)

  if profile == "argocd" then
    local tableLib = {}
    for name, fn in pairs(tableFuncs) do
      tableLib[name] = fn
    end
    local safeOs = { time = osTime, date = osDate }
    local package = {
      preload = { os = function() return safeOs end },
      loaded = {},
      loaders = {},
      path = "./?.lua",
      cpath = "",
      config = "/\n;\n?\n!\n-\n",
      seeall = function(module)
        setmetatable(module, { __index = globals })
      end,
      loadlib = function()
        return nil, "loadlib is not supported", "absent"
      end,
    }
    package.loaded._G = globals
    package.loaded.package = package
    package.loaded.table = tableLib
    globals.package = package
    globals.table = tableLib
    globals.require = function(name)
      local loaded = package.loaded[name]
      if loaded ~= nil then
        return loaded
      end
      local loader = package.preload[name]
      if loader == nil then
        error("module " .. tostring(name) .. " not found", 2)
      end
      loaded = loader(name)
      package.loaded[name] = loaded
      return loaded
    end
  else
    globals.require = nil
    globals.module = nil
  end
end
globals.obj = obj
globals.actionParams = {}

-- Argo CD cancels a script after one second (context.WithTimeout in runLua).
local started = clock()
local ok, result = pcall(script)
if not ok then
  fail(result)
end
if clock() - started > 1 then
  fail("the script ran longer than Argo CD's one-second limit")
end

-- ExecuteHealthLua: nil gives an empty status; a table is decoded as HealthStatus{status, message}.
if result == nil then
  stdout:write("\n")
  exit(0)
end
if type(result) ~= "table" then
  fail("expect table output from Lua script, not " .. type(result))
end
if next(result) == nil then
  -- An empty table encodes as a JSON array, which Argo CD turns into an empty status.
  stdout:write("\n")
  exit(0)
end
local status, message = result.status, result.message
for _, value in ipairs({ status, message }) do
  if value ~= nil and type(value) ~= "string" then
    fail("status and message must be strings, got " .. type(value))
  end
end
local valid = {
  Healthy = true, Progressing = true, Degraded = true, Suspended = true, Missing = true, Unknown = true,
}
if status == nil then
  status = ""
end
if message == nil then
  message = ""
end
if not valid[status] then
  -- isValidHealthStatusCode: an empty or unknown status becomes Unknown.
  status, message = "Unknown", "Lua returned an invalid health status"
end
stdout:write(status, "\n", message)
exit(0)
