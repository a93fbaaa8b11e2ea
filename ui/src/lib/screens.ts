// The five screens of the product flow, in the order a person goes through them.
export type ScreenId = "data" | "model" | "persona" | "train" | "chat";

export interface ScreenInfo {
  id: ScreenId;
  title: string;
  /** One line under the title in the sidebar tooltip and the screen header. */
  summary: string;
}

export const SCREENS: readonly ScreenInfo[] = [
  { id: "data", title: "Data", summary: "The example folders your assistant learns from" },
  { id: "model", title: "Model", summary: "The model Residency will teach, and the computer it runs on" },
  { id: "persona", title: "Persona", summary: "How your assistant introduces itself and speaks" },
  { id: "train", title: "Train", summary: "Teach the model your examples, on this computer" },
  { id: "chat", title: "Chat", summary: "Talk to the result before you rely on it" },
];

