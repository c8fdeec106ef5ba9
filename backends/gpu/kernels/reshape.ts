/** reshape: no kernel — the result is the operand's texture, since every value is stored flat. */
export const RESHAPE_IS_ALIAS = true;
