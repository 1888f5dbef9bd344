-- Argo CD health check for forecastops.io/ForecastModel.
--
-- Argo CD runs a customised health check with only the base library, the table library and
-- require("os") unless resource.customizations.useOpenLibs.forecastops.io_ForecastModel is
-- true. This script uses nothing but base functions (ipairs, tonumber, tostring) and the `..`
-- operator, so it gives the same answer with or without the open libraries.
--
-- The checks, in order (the first that applies decides):
--   1. The operator has not observed metadata.generation yet              -> Progressing
--   2. A rollout was aborted or rolled back (phase RolledBack, or the
--      Progressing condition's reason is one of abortReasons), the Degraded
--      condition is True, the model failed verification (ModelVerified
--      False), or phase Degraded                                           -> Degraded
--      An aborted rollout is never Healthy, although stable keeps serving.
--   3. phase Paused (a pause step, a user's pause, inconclusive analysis)  -> Suspended
--   4. phase Pending, Progressing or Promoting, or phase Healthy with
--      Ready not True                                                      -> Progressing
--   5. phase Healthy                                                       -> Healthy
-- A phase this script does not know gives Unknown rather than a guess.

-- Reasons the operator gives a rollout that stopped for good.
local abortReasons = {
  AnalysisFailed = true,
  UserAborted = true,
  ProgressDeadlineExceeded = true,
  RolloutAborted = true,
  RolledBack = true,
}

local function findCondition(status, conditionType)
  if status.conditions == nil then
    return nil
  end
  for _, condition in ipairs(status.conditions) do
    if condition.type == conditionType then
      return condition
    end
  end
  return nil
end

local function isSet(value)
  return value ~= nil and value ~= ""
end

-- "Reason: message", or whichever of the two the condition has, or the fallback.
local function describe(condition, fallback)
  if condition == nil then
    return fallback
  end
  if isSet(condition.reason) and isSet(condition.message) then
    return condition.reason .. ": " .. condition.message
  end
  if isSet(condition.message) then
    return condition.message
  end
  if isSet(condition.reason) then
    return condition.reason
  end
  return fallback
end

local function withCanaryWeight(message, status)
  local weight = tonumber(status.canaryWeight)
  if weight ~= nil then
    return message .. ": canary weight " .. tostring(weight) .. "%"
  end
  return message
end

local function health(status, message)
  return { status = status, message = message }
end

-- 1. Status must describe the spec the user wrote.
local generation = nil
if obj.metadata ~= nil then
  generation = tonumber(obj.metadata.generation)
end
local status = obj.status
if status == nil then
  status = {}
end
local observed = tonumber(status.observedGeneration)
if generation ~= nil and (observed == nil or observed < generation) then
  local message = "Waiting for the operator to observe generation " .. tostring(generation)
  if observed ~= nil then
    message = message .. " (status is from generation " .. tostring(observed) .. ")"
  end
  return health("Progressing", message)
end
if generation == nil and status.phase == nil then
  return health("Progressing", "Waiting for the operator to report status")
end

local phase = status.phase
local ready = findCondition(status, "Ready")
local progressing = findCondition(status, "Progressing")
local degraded = findCondition(status, "Degraded")
local modelVerified = findCondition(status, "ModelVerified")

-- 2. Aborted rollouts and failures.
if phase == "RolledBack" then
  local fallback = "Rollout aborted"
  if isSet(status.canaryRevision) then
    fallback = fallback .. ": revision " .. status.canaryRevision .. " was rolled back"
  end
  if isSet(status.stableRevision) then
    fallback = fallback .. "; stable revision " .. status.stableRevision .. " serves all traffic"
  end
  if degraded ~= nil and degraded.status == "True" then
    return health("Degraded", describe(degraded, fallback))
  end
  if progressing ~= nil and abortReasons[progressing.reason] then
    return health("Degraded", describe(progressing, fallback))
  end
  return health("Degraded", fallback)
end
if degraded ~= nil and degraded.status == "True" then
  return health("Degraded", describe(degraded, "The operator reports the model degraded"))
end
if progressing ~= nil and abortReasons[progressing.reason] then
  return health("Degraded", describe(progressing, "Rollout aborted"))
end
if modelVerified ~= nil and modelVerified.status == "False" then
  return health("Degraded", describe(modelVerified, "The model failed verification"))
end
if phase == "Degraded" then
  local fallback = "The operator reports phase Degraded"
  if ready ~= nil and ready.status ~= "True" then
    return health("Degraded", describe(ready, fallback))
  end
  return health("Degraded", fallback)
end

-- 3. Paused: waiting for a promote, a pause duration or conclusive analysis.
if phase == "Paused" then
  return health("Suspended", describe(progressing, withCanaryWeight("Rollout paused", status)))
end

-- 4. On the way.
if phase == "Pending" then
  return health("Progressing", describe(ready, "Waiting for the model server to start"))
end
if phase == "Progressing" or phase == "Promoting" then
  return health("Progressing", describe(progressing, withCanaryWeight("Rollout in progress", status)))
end
if phase == nil then
  return health("Progressing", "Waiting for the operator to report a phase")
end

-- 5. Healthy, once the operator also reports the server Ready.
if phase == "Healthy" then
  if ready ~= nil and ready.status ~= "True" then
    return health("Progressing", describe(ready, "Waiting for the model server to become ready"))
  end
  local message = ""
  if isSet(status.version) then
    message = "Serving model version " .. status.version
    if isSet(status.stableRevision) then
      message = message .. " (revision " .. status.stableRevision .. ")"
    end
  elseif isSet(status.stableRevision) then
    message = "Serving revision " .. status.stableRevision
  end
  return health("Healthy", message)
end

return health("Unknown", "Unrecognized phase " .. tostring(phase))
