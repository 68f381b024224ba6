/** docs/design.md §7: see the property's name. The body lives in properties.ts (shared with npm run fuzz). */
import { teardownWithAuth } from "./properties.ts"
import { register } from "./register.ts"

register(teardownWithAuth)
