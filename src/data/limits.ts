/**
 * Limits every loader applies to what a file may declare, so that a small hostile or corrupt
 * file cannot make the library allocate without bound.
 */

/**
 * The most classes a label column or labels file may name: labels must lie in
 * `[0, MAX_CLASSES)`. A classifier over more classes than this is not what this library is for,
 * and a stray label like 2^31 − 1 would otherwise ask for a softmax layer of 2^31 outputs.
 */
export const MAX_CLASSES = 65_536;
