"""Español: the traveller status page (the kiosk's languages)."""

MESSAGES = {
    'Skip to main content':
        'Saltar al contenido',
    'Language':
        'Idioma',
    'Tax-free form status':
        'Estado de su formulario tax-free',
    'Export deadline':
        'Plazo de exportación',
    'Form number':
        'Número de formulario',
    'Next step':
        'Siguiente paso',
    'Check another form':
        'Consultar otro formulario',
    'Check your tax-free form':
        'Consulte su formulario tax-free',
    'Enter the form number printed next to the QR code and your last name as in your passport.':
        'Introduzca el número impreso junto al código QR y su apellido tal como figura en su pasaporte.',
    '10 letters and digits, for example NL 7K3Q W9XD':
        '10 letras y números, por ejemplo NL 7K3Q W9XD',
    'Last name':
        'Apellido',
    'Show status':
        'Ver estado',
    'Validate your form at your last EU airport or port, before you check in your luggage.':
        'Valide su formulario en su último aeropuerto o puerto de la UE, antes de facturar el equipaje.',
    'Not validated yet':
        'Aún no validado',
    'Customs check needed':
        'Se requiere control aduanero',
    'Go to the customs desk with your goods, your passport and this form, before you check in your luggage.':
        'Diríjase al mostrador de aduanas con sus productos, su pasaporte y este formulario, antes de facturar el equipaje.',
    'Export validated':
        'Exportación validada',
    'Export validated for part of your goods':
        'Exportación validada para parte de sus productos',
    'Your refund will be paid by {payer}.':
        'Su reembolso lo pagará {payer}.',
    'Refund paid':
        'Reembolso pagado',
    'Nothing more to do. Have a good trip!':
        'No tiene que hacer nada más. ¡Buen viaje!',
    'Export refused by customs':
        'Exportación rechazada por la aduana',
    'This form cannot be validated any more. Ask the shop if you have questions.':
        'Este formulario ya no se puede validar. Consulte a la tienda si tiene preguntas.',
    'Form cancelled by the shop':
        'Formulario anulado por la tienda',
    'This form cannot be used. Ask the shop if you have questions.':
        'Este formulario no se puede usar. Consulte a la tienda si tiene preguntas.',
    'Export deadline passed':
        'Plazo de exportación vencido',
    'This form can no longer be validated.':
        'Este formulario ya no se puede validar.',
    'Fill this in.':
        'Rellene este campo.',
    'This is not a valid form number. Check it on your form.':
        'Este número de formulario no es válido. Compruébelo en su formulario.',
    'Too many attempts. Wait a minute and try again.':
        'Demasiados intentos. Espere un minuto y vuelva a intentarlo.',
    'We found no form with this number and last name.':
        'No encontramos ningún formulario con este número y apellido.',
    'This page was open for a long time. Please send it again.':
        'Esta página estuvo abierta mucho tiempo. Envíela de nuevo.',
    'Go to the start page':
        'Ir a la página de inicio',
}
