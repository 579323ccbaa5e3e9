"""Deutsch: the traveller status page (the kiosk's languages)."""

MESSAGES = {
    'Skip to main content':
        'Zum Inhalt springen',
    'Language':
        'Sprache',
    'Tax-free form status':
        'Status Ihres Tax-free-Formulars',
    'Export deadline':
        'Ausfuhrfrist',
    'Form number':
        'Formularnummer',
    'Next step':
        'Nächster Schritt',
    'Check another form':
        'Anderes Formular prüfen',
    'Check your tax-free form':
        'Tax-free-Formular prüfen',
    'Enter the form number printed next to the QR code and your last name as in your passport.':
        'Geben Sie die Formularnummer neben dem QR-Code und Ihren Nachnamen wie im Reisepass ein.',
    '10 letters and digits, for example NL 7K3Q W9XD':
        '10 Buchstaben und Ziffern, zum Beispiel NL 7K3Q W9XD',
    'Last name':
        'Nachname',
    'Show status':
        'Status anzeigen',
    'Validate your form at your last EU airport or port, before you check in your luggage.':
        'Lassen Sie Ihr Formular an Ihrem letzten Flughafen oder Hafen in der EU bestätigen, bevor Sie Ihr Gepäck aufgeben.',
    'Not validated yet':
        'Noch nicht bestätigt',
    'Customs check needed':
        'Zollkontrolle erforderlich',
    'Go to the customs desk with your goods, your passport and this form, before you check in your luggage.':
        'Gehen Sie mit Ihren Waren, Ihrem Reisepass und diesem Formular zum Zollschalter, bevor Sie Ihr Gepäck aufgeben.',
    'Export validated':
        'Ausfuhr bestätigt',
    'Export validated for part of your goods':
        'Ausfuhr für einen Teil Ihrer Waren bestätigt',
    'Your refund will be paid by {payer}.':
        'Ihre Erstattung zahlt {payer}.',
    'Refund paid':
        'Erstattung ausgezahlt',
    'Nothing more to do. Have a good trip!':
        'Sie müssen nichts mehr tun. Gute Reise!',
    'Export refused by customs':
        'Ausfuhr vom Zoll abgelehnt',
    'This form cannot be validated any more. Ask the shop if you have questions.':
        'Dieses Formular kann nicht mehr bestätigt werden. Wenden Sie sich bei Fragen an das Geschäft.',
    'Form cancelled by the shop':
        'Formular vom Geschäft storniert',
    'This form cannot be used. Ask the shop if you have questions.':
        'Dieses Formular kann nicht verwendet werden. Wenden Sie sich bei Fragen an das Geschäft.',
    'Export deadline passed':
        'Ausfuhrfrist abgelaufen',
    'This form can no longer be validated.':
        'Dieses Formular kann nicht mehr bestätigt werden.',
    'Fill this in.':
        'Bitte ausfüllen.',
    'This is not a valid form number. Check it on your form.':
        'Das ist keine gültige Formularnummer. Bitte prüfen Sie sie auf Ihrem Formular.',
    'Too many attempts. Wait a minute and try again.':
        'Zu viele Versuche. Warten Sie eine Minute und versuchen Sie es erneut.',
    'We found no form with this number and last name.':
        'Wir haben kein Formular mit dieser Nummer und diesem Nachnamen gefunden.',
    'This page was open for a long time. Please send it again.':
        'Diese Seite war lange geöffnet. Bitte senden Sie sie erneut.',
    'Go to the start page':
        'Zur Startseite',
}
