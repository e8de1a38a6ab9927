-- Argo CD health check for claw.dev/ClawInstance (claw-operator).
-- Reads only the status contract (docs/troubleshooting.md): the conditions Ready, Reconciling,
-- Stalled, StartFailed and status.observedGeneration, plus the claw.dev/paused annotation.
--   Suspended    paused: the annotation claw.dev/paused is "true", or Reconciling=False/Paused
--   Progressing  no status yet, a generation not yet observed, or work in flight
--   Degraded     Stalled=True (retrying will not help until the spec or the environment
--                changes), or Ready=False because the last start failed or the machine
--                is crash-looping (CrashLoopBackOff)
--   Healthy      Ready=True for the current generation
local hs = {}

local function condition(conditionType)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function describe(c, fallback)
  if c == nil then
    return fallback
  end
  local text = c.reason or fallback
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end

local annotations = obj.metadata and obj.metadata.annotations
if annotations ~= nil and annotations["claw.dev/paused"] == "true" then
  hs.status = "Suspended"
  hs.message = "Paused by the claw.dev/paused annotation"
  return hs
end

local reconciling = condition("Reconciling")
if reconciling ~= nil and reconciling.status == "False" and reconciling.reason == "Paused" then
  hs.status = "Suspended"
  hs.message = describe(reconciling, "Paused")
  return hs
end

if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local generation = obj.metadata and obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to act on generation " .. tostring(generation)
  return hs
end

local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "Stalled")
  return hs
end

local ready = condition("Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
  return hs
end

if ready ~= nil and (ready.reason == "StartFailed" or ready.reason == "CrashLoopBackOff") then
  hs.status = "Degraded"
  hs.message = describe(ready, "StartFailed")
  return hs
end

hs.status = "Progressing"
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = describe(reconciling, "Reconciling")
else
  hs.message = describe(ready, "Waiting for Ready")
end
return hs
