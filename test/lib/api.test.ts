/**
 * The published types (src/lib/api.ts imports nothing, so it repeats what the runtime defines) say what
 * the code does: checked by the type checker (`npm run typecheck` covers this file), and the settings'
 * names once more at run time against the settings table.
 */
import { describe, expect, expectTypeOf, it } from "vitest"
import type { SettingValues } from "../../src/cli/settings.ts"
import { settings } from "../../src/cli/settings.ts"
import type { statsFigures } from "../../src/cli/wording.ts"
import type * as Api from "../../src/lib/api.ts"
import * as Library from "../../src/index.ts"
import type { AuthenticateAnswer, AuthenticateFunction, AuthenticateRequest } from "../../src/runtime/auth/HookAuthenticator.ts"
import type { RouteAnswer, RouteFunction, RouteRequest } from "../../src/runtime/dial/RouteHook.ts"
import type { StatsSnapshot } from "../../src/runtime/observe/Stats.ts"

describe("src/lib/api.ts", () => {
  it("names every setting, and only settings", () => {
    expectTypeOf<keyof Api.ProxySettings>().toEqualTypeOf<keyof SettingValues>()
    expectTypeOf<keyof Api.ProxyOptions>().toEqualTypeOf<keyof SettingValues>()
    const keys: ReadonlyArray<keyof Api.ProxySettings> = settings.map((s) => s.key as keyof Api.ProxySettings)
    expect(keys).toHaveLength(settings.length)
  })

  it("describes the hooks as the workers call them", () => {
    expectTypeOf<Api.RouteRequest>().toEqualTypeOf<RouteRequest>()
    expectTypeOf<Api.RouteAnswer>().toEqualTypeOf<RouteAnswer>()
    expectTypeOf<Api.AuthenticateRequest>().toEqualTypeOf<AuthenticateRequest>()
    expectTypeOf<Api.AuthenticateAnswer>().toEqualTypeOf<AuthenticateAnswer>()
    expectTypeOf<Api.RouteHook>().toEqualTypeOf<RouteFunction>()
    expectTypeOf<Api.AuthenticateHook>().toEqualTypeOf<AuthenticateFunction>()
  })

  it("has the figures of GET /stats", () => {
    type Figures = keyof Omit<StatsSnapshot, "totals"> | keyof StatsSnapshot["totals"]
    expectTypeOf<keyof Api.ProxyStats>().toEqualTypeOf<Figures>()
    expectTypeOf<ReturnType<typeof statsFigures>>().toEqualTypeOf<Record<string, number>>()
  })

  it("declares what src/index.ts exports", () => {
    expectTypeOf(Library.startProxy).toEqualTypeOf<typeof Api.startProxy>()
    expectTypeOf(Library.anonymizeProxy).toEqualTypeOf<typeof Api.anonymizeProxy>()
    expectTypeOf(Library.closeAnonymizedProxy).toEqualTypeOf<typeof Api.closeAnonymizedProxy>()
    expectTypeOf<InstanceType<typeof Library.ProxyError>>().toMatchTypeOf<Api.ProxyError>()
    expect(Object.keys(Library).sort()).toEqual(["ProxyError", "anonymizeProxy", "closeAnonymizedProxy", "startProxy"])
  })
})
