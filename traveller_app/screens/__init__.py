"""The traveller's screens, one kv file each (loaded once, by ``load_kv``).

kv rules apply by class name to every class of that name in the process:
names here differ from the kiosk's and the officer's (hence
ValidationResultScreen beside the kiosk's ResultScreen).

kv holds the layout; these classes fill lists and hand what the traveller
does to the app.
"""
from __future__ import annotations

from pathlib import Path

from kivy.app import App
from kivy.lang import Builder
from kivy.properties import BooleanProperty, ListProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import Screen

from kivy_common.widgets import DirectionRow

HERE = Path(__file__).parent


def _(message: str) -> str:
    """Marks a message id for the catalogs; translated where it is shown."""
    return message
NAMES = ("passport", "forms", "trip", "validate", "result", "afterwards")


class VerdictCard(BoxLayout):
    kind = StringProperty("validated")
    tone = StringProperty("success")
    title = StringProperty("")
    body = StringProperty("")


class FormRow(DirectionRow):
    form_id = StringProperty("")
    text = StringProperty("")
    chosen = BooleanProperty(False)
    choosable = BooleanProperty(False)


class TravellerScreen(Screen):
    error = StringProperty("")
    scanning = BooleanProperty(False)

    @property
    def app(self):
        return App.get_running_app()

    def on_leave(self, *_):
        if self.scanning:
            self.app.stop_camera()

    def toggle_camera(self) -> None:
        if self.scanning:
            self.app.stop_camera()
        else:
            self.app.start_camera(self, self.camera_purpose)


class PassportScreen(TravellerScreen):
    camera_purpose = "passport"

    def zone_typed(self, text: str) -> None:
        self.app.give_zone(text)

    def fields_typed(self, number, country, birth, expiry) -> None:
        self.app.give_fields(number, country, birth, expiry)


class FormsScreen(TravellerScreen):
    camera_purpose = "form"
    waiting = BooleanProperty(False)  # a form waits for a check at the desk

    def scan_form(self) -> None:
        self.toggle_camera()

    def show(self, forms, wording) -> None:
        rows = self.ids.rows
        rows.clear_widgets()
        self.waiting = any(form.status == "check_required" for form in forms)
        for form in forms:
            if not form.open:
                continue
            text = "\n".join([form.id + " · " + wording.form_line(form), ", ".join(form.goods),
                              wording.status(form.status), wording.deadline(form)])
            rows.add_widget(FormRow(form_id=form.id, text=text))
        if not rows.children:
            rows.add_widget(FormRow(text=wording(_("No open forms for this passport yet. "
                                                   "Scan the QR code on your form, or ask the shop."))))


class TripScreen(TravellerScreen):
    camera_purpose = "boarding_pass"
    summary = StringProperty("")


class ValidateScreen(TravellerScreen):
    chosen = ListProperty([])

    def show(self, forms, wording) -> None:
        rows = self.ids.rows
        rows.clear_widgets()
        for form in forms:
            if form.open:
                row = FormRow(form_id=form.id, text=form.id + " · " + wording.form_line(form),
                              choosable=True, chosen=True)
                row.bind(chosen=lambda *_: self._recount())
                rows.add_widget(row)
        self._recount()

    def _recount(self) -> None:
        self.chosen = [r.form_id for r in reversed(self.ids.rows.children) if r.chosen]

    def send(self) -> None:
        self.app.validate(list(self.chosen))


class ValidationResultScreen(TravellerScreen):
    _desk_pass = None  # the desk pass's Image itself, not ids' weak proxy to it

    def cards(self) -> list[VerdictCard]:
        return [c for c in reversed(self.ids.cards.children) if isinstance(c, VerdictCard)]

    def show(self, cards: list[VerdictCard], desk_pass_texture=None) -> None:
        """The cards top to bottom as given, the desk pass's QR code last."""
        if self._desk_pass is None:
            # ids holds weak proxies, and clear_widgets takes the image out of
            # the box, its only strong reference: the garbage collector could
            # free it before it is added back.
            self._desk_pass = self.ids.desk_pass.__self__
        box, image = self.ids.cards, self._desk_pass
        box.clear_widgets()
        for card in cards:
            box.add_widget(card)
        image.texture = desk_pass_texture
        box.add_widget(image)


class AfterwardsScreen(TravellerScreen):
    def show(self, forms, wording) -> None:
        rows = self.ids.rows
        rows.clear_widgets()
        for form in forms:
            if form.open:
                continue
            rows.add_widget(FormRow(form_id=form.id, text="\n".join(
                [form.id + " · " + wording.form_line(form), wording.status(form.status)])))
        if not rows.children:
            rows.add_widget(FormRow(text=wording(_("No validated forms yet."))))


SCREENS = {"passport": PassportScreen, "forms": FormsScreen, "trip": TripScreen,
           "validate": ValidateScreen, "result": ValidationResultScreen, "afterwards": AfterwardsScreen}
_loaded = False


def load_kv() -> None:
    global _loaded
    if _loaded:
        return
    Builder.load_file(str(HERE.parent / "widgets.kv"))
    for name in NAMES:
        Builder.load_file(str(HERE / f"{name}.kv"))
    _loaded = True


def build_screens() -> dict:
    load_kv()
    return {name: cls(name=name) for name, cls in SCREENS.items()}


